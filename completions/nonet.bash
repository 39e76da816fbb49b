# bash completion for nonet(1).
#
# nonet's own options come first; from the first word that is not an option
# (or the word after '--') on, the words are a command line of their own, so
# they are completed as one, the way bash-completion does for sudo and env.
# The option list matches 'nonet --help'.

_nonet()
{
    local cur=${COMP_WORDS[COMP_CWORD]}

    # Find where the wrapped command starts: skip nonet's options, and the
    # value of an option that takes one.
    local i=1 start=-1
    while ((i < COMP_CWORD)); do
        case ${COMP_WORDS[i]} in
            --)
                start=$((i + 1))
                break
                ;;
            --launcher)
                ((i += 2))
                ;;
            -?*)
                ((i++))
                ;;
            *)
                start=$i
                break
                ;;
        esac
    done

    if ((start >= 0)); then
        _nonet_command "$start"
    elif ((i > COMP_CWORD)); then
        # The word being completed is the PATH of --launcher.
        _nonet_files
    elif [[ $cur == -* ]]; then
        local options='--self-test --json --print-config --launcher --version --help -h --'
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
    else
        # The first word that is not an option: the command's name.
        _nonet_command "$COMP_CWORD"
    fi
}

# Complete the words from index $1 on as a command line of their own.
_nonet_command()
{
    local start=$1
    if declare -F _command_offset >/dev/null; then
        # bash-completion is loaded: it knows every command's completion.
        _command_offset "$start"
        return
    fi
    local cur=${COMP_WORDS[COMP_CWORD]}
    if ((COMP_CWORD == start)); then
        mapfile -t COMPREPLY < <(compgen -c -- "$cur")
    else
        _nonet_files
    fi
}

_nonet_files()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    if declare -F _filedir >/dev/null; then
        _filedir
    else
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
}

complete -F _nonet nonet
