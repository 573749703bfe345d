
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'pushserve' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'pushserve'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'pushserve' {
            [CompletionResult]::new('--exec', '--exec', [CompletionResultType]::ParameterName, 'Serve the output of CMD, run with sh -c (cmd /C on Windows) every --poll ms after the last run ends (like watch): text, or an image by its first bytes, or --type. A run that fails or takes over 10 s (or --poll) keeps the last frame. NAME=CMD names it. Repeat for several')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Port to listen on (0 picks a free one)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to listen on (0 picks a free one)')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Address to listen on; use 0.0.0.0 or :: to serve other machines, or unix:PATH for a Unix socket (for a proxy in front; not on Windows). Sockets handed over by systemd (socket activation) are used instead')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Address to listen on; use 0.0.0.0 or :: to serve other machines, or unix:PATH for a Unix socket (for a proxy in front; not on Windows). Sockets handed over by systemd (socket activation) are used instead')
            [CompletionResult]::new('--allow-host', '--allow-host', [CompletionResultType]::ParameterName, 'Also answer requests whose Host is NAME (.example.com: and its subdomains). Bound to loopback, other names than localhost are refused (DNS rebinding); bound elsewhere, giving names limits requests to them and IP addresses. Repeat, or separate with commas')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Serve HTTPS with this certificate chain (PEM); --tls-key gives its key')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'The private key of --tls-cert (PEM)')
            [CompletionResult]::new('--poll', '--poll', [CompletionResultType]::ParameterName, 'How often to look at a file or the current slide even without a change event (a change is seen at once through the system''s change events; the poll is the safety net), run a command again, or fetch an image URL again, in milliseconds')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Content-Type of the parts [default: guessed from the file extension]')
            [CompletionResult]::new('--type', '--type', [CompletionResultType]::ParameterName, 'Content-Type of the parts [default: guessed from the file extension]')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Send a keep-alive on a stream that has sent nothing for this many seconds, so proxies and GStreamer (which gives up after 15 s) keep idle streams open and vanished clients are noticed: a browser gets the current frame again, a stream reader a header line it ignores, /events a comment line; a relay connects again to an upstream that has sent nothing for three times this long')
            [CompletionResult]::new('--repeat', '--repeat', [CompletionResultType]::ParameterName, 'Send a stream reader (not a browser) the current frame again after this many seconds without a new one, as OpenCV gives up on a stream after 30 s without a frame; 0 never does, so that a recording gets no duplicate frames')
            [CompletionResult]::new('--write-timeout', '--write-timeout', [CompletionResultType]::ParameterName, 'Drop a client that takes less than 64 KiB (or all that is left to send) in this many seconds: slow but steady clients are never cut')
            [CompletionResult]::new('--lines', '--lines', [CompletionResultType]::ParameterName, 'Lines of text from stdin shown at once: the live tail of `tail -f log | pushserve -`')
            [CompletionResult]::new('--max-frame', '--max-frame', [CompletionResultType]::ParameterName, 'Skip versions larger than this, keeping the last frame (suffixes K, M, G: powers of 1024)')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Ask every client for this user name and password (HTTP Basic authentication; the password may hold colons). Repeat for several accounts. Without TLS in front, they cross the network readable by anyone on the way. PUSHSERVE_AUTH keeps a password out of ps')
            [CompletionResult]::new('--netrc-file', '--netrc-file', [CompletionResultType]::ParameterName, 'Take the user name and password of a relayed URL that has none from this netrc file (machine HOST login USER password PASS, as curl --netrc-file and wget read it), where ps does not show them as it shows a URL''s')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Time each slide is shown, in milliseconds')
            [CompletionResult]::new('--ext', '--ext', [CompletionResultType]::ParameterName, 'File extensions to show, comma-separated (case-insensitive)')
            [CompletionResult]::new('--order', '--order', [CompletionResultType]::ParameterName, 'Order of the slides in each cycle')
            [CompletionResult]::new('--print-completions', '--print-completions', [CompletionResultType]::ParameterName, 'Print the completion script for SHELL and exit')
            [CompletionResult]::new('--tls-self-signed', '--tls-self-signed', [CompletionResultType]::ParameterName, 'Serve HTTPS with a certificate made at start for this machine''s names and addresses, for a quick share on a LAN; its SHA-256 fingerprint goes to stderr, to check against what the browser shows')
            [CompletionResult]::new('--poll-only', '--poll-only', [CompletionResultType]::ParameterName, 'Look at files and folders only every --poll, without change events (for a filesystem whose events are wrong, or to compare)')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'Play each source once (a folder''s cycle, stdin or a relayed stream to its end, one run of each command, a file''s current version), end every stream, and exit')
            [CompletionResult]::new('--cors', '--cors', [CompletionResultType]::ParameterName, 'Add Access-Control-Allow-Origin: * to /events, /poll, /snapshot and /status, so pages on other origins can use them')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (wins over --verbose)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (wins over --verbose)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Also print one line per finished connection: client, path, status, duration, bytes')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Also print one line per finished connection: client, path, status, duration, bytes')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Include files in subfolders')
            [CompletionResult]::new('--recursive', '--recursive', [CompletionResultType]::ParameterName, 'Include files in subfolders')
            [CompletionResult]::new('--follow-links', '--follow-links', [CompletionResultType]::ParameterName, 'Also walk symlinked folders that lead outside the folder (symlinked files are always shown)')
            [CompletionResult]::new('--print-manpage', '--print-manpage', [CompletionResultType]::ParameterName, 'Print the man page (roff) and exit')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
