# fish completion for nonet(1).
#
# nonet's own options come first; the first word that is not an option (or
# the word after '--') starts a command line of its own, completed with that
# command's completion, as for sudo and env.  The options match 'nonet --help'.

# True once the command line has reached the wrapped command.
function __fish_nonet_in_command
    set -l tokens (commandline -opc)
    set -e tokens[1]
    while set -q tokens[1]
        switch $tokens[1]
            case --
                return 0
            case --launcher --forward --publish --allow --report-file
                # Its value is the next word.
                set -e tokens[1]
            case -
                return 0
            case '-*'
            case '*'
                return 0
        end
        set -e tokens[1]
    end
    return 1
end

set -l opts 'not __fish_nonet_in_command'
complete -c nonet -n $opts -l self-test -d 'Check on this host that nonet works, end to end'
complete -c nonet -n $opts -l json -d 'Print one JSON document (with --self-test or --print-config)'
complete -c nonet -n $opts -l print-config -d "Show each setting's effective value and its source"
complete -c nonet -n $opts -l launcher -r -F -d 'Use this nonet-launcher'
complete -c nonet -n $opts -l forward -x -d 'Let the command reach a TCP port outside: [INNERPORT:][HOSTADDR:]PORT'
complete -c nonet -n $opts -l publish -x -d 'Let the caller reach a TCP server of the command: [OUTERPORT:]INNERPORT'
complete -c nonet -n $opts -l allow -x -d 'Let the command reach a host, *.domain, address or CIDR, with optional :PORT'
complete -c nonet -n $opts -l report -d 'When the command ends, list every attempt it made to reach outside'
complete -c nonet -n $opts -l report-file -r -F -d 'Write each attempt to a file as it happens, as JSON lines'
complete -c nonet -n $opts -l hint -d 'After a failing command, say which name lookups nonet answered'
complete -c nonet -n $opts -l no-hint -d 'Never say which name lookups nonet answered'
complete -c nonet -n $opts -l version -d 'Show the versions of nonet and its launcher'
complete -c nonet -n $opts -s h -l help -d 'Show help'

# The command's name, then its arguments with its own completion.
complete -c nonet -f -a '(__fish_complete_subcommand -- --launcher --forward --publish --report-file --allow)'
