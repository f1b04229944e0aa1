# bash completion for pacemakerctl(1)  -*- shell-script -*-
# Commands come from `pacemakerctl --help` and each command's flags from
# `pacemakerctl COMMAND --help`, so new ones complete without an update here.

_pacemakerctl_commands()
{
    "$1" --help 2>&1 | sed -n '/^Commands:/,/^$/{s/^  \([a-z][a-z-]*\).*/\1/p}'
}

_pacemakerctl_flags()
{
    "$1" "$2" --help 2>&1 | sed -n 's/^  \(--[a-z][a-z-]*\).*/\1/p'
}

_pacemakerctl()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local global_flags='--servers --storm-config --auth --jaas --timeout --version --help'
    case $prev in
        --auth|-auth)
            mapfile -t COMPREPLY < <(compgen -W 'NONE DIGEST KERBEROS' -- "$cur")
            return ;;
        --storm-config|-storm-config|--jaas|-jaas)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return ;;
        --servers|-servers|--timeout|-timeout|--stale|-stale|--max-*|-max-*)
            return ;;
        --color|-color)
            mapfile -t COMPREPLY < <(compgen -W 'auto always never' -- "$cur")
            return ;;
    esac

    # Find the command: the first word that is neither a flag nor a flag's value.
    local i command=''
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --servers|-servers|--storm-config|-storm-config|--auth|-auth|--jaas|-jaas|--timeout|-timeout)
                ((i++)) ;;
            -*) ;;
            *) command=${words[i]}; break ;;
        esac
    done

    if [[ -z $command ]]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$global_flags" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$(_pacemakerctl_commands "${words[0]}")" -- "$cur")
        fi
        return
    fi

    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_pacemakerctl_flags "${words[0]}" "$command") $global_flags" -- "$cur")
        return
    fi
    case $command in
        send)
            # send PATH [FILE|-]: a local file as the second argument.
            if ((cword - i == 2)); then
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            fi ;;
    esac
}
complete -F _pacemakerctl pacemakerctl
