# bash completion for nonet(1).
#
# nonet's own options come first; from the first word that is not an option
# (or the word after '--') on, the words are a command line of their own, so
# they are completed as one, the way bash-completion does for sudo and env.
# The option list matches 'nonet --help'.

_nonet()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local -a words at
    _nonet_words

    # Find where the wrapped command starts: skip nonet's options, and the
    # value of an option that takes one.  i and start count whole words.
    local cword=$((${#words[@]} - 1)) i=1 start=-1
    while ((i < cword)); do
        case ${words[i]} in
            --)
                start=$((i + 1))
                break
                ;;
            --launcher | --forward | --publish | --allow | --report-file)
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
        _nonet_command "${at[start]}"
    elif ((i > cword)); then
        # The word being completed is the value of the option before it:
        # the PATH of --launcher; a port spec, which has no completion.
        if [[ ${words[cword - 1]} == --launcher || ${words[cword - 1]} == --report-file ]]; then
            _nonet_files
        fi
    elif [[ ${words[cword]} == --launcher=* || ${words[cword]} == --report-file=* ]]; then
        _nonet_files
    elif [[ ${words[cword]} == -*=* ]]; then
        :
    elif [[ $cur == -* ]]; then
        local options='--self-test --json --print-config --launcher --forward --publish --allow --report --report-file --hint --no-hint --version --help -h --'
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
    else
        # The first word that is not an option: the command's name.
        _nonet_command "${at[cword]}"
    fi
}

# bash splits the line into COMP_WORDS at the characters of COMP_WORDBREAKS
# too, ':' and '=' among them, so '--publish 18000:8000' arrives as
# '--publish' '18000' ':' '8000'.  Put back together the pieces that no
# blank separates in COMP_LINE, up to the word being completed: words[k] is
# the k-th word as typed, at[k] the index in COMP_WORDS of its first piece.
# A piece that is not where COMP_LINE says starts a word of its own.
_nonet_words()
{
    local line=${COMP_LINE-} rest i k=-1
    words=() at=()
    for ((i = 0; i <= COMP_CWORD; i++)); do
        rest=${line#"${line%%[![:blank:]]*}"}
        if ((k < 0)) || [[ $rest != "$line" || $rest != "${COMP_WORDS[i]}"* ]]; then
            words[++k]=
            at[k]=$i
        fi
        words[k]+=${COMP_WORDS[i]}
        line=${rest#"${COMP_WORDS[i]}"}
    done
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
