
use builtin;
use str;

set edit:completion:arg-completer[pushserve] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'pushserve'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'pushserve'= {
            cand --exec 'Serve the output of CMD, run with sh -c (cmd /C on Windows) every --poll ms after the last run ends (like watch): text, or an image by its first bytes, or --type. A run that fails or takes over 10 s (or --poll) keeps the last frame. NAME=CMD names it. Repeat for several'
            cand -p 'Port to listen on (0 picks a free one)'
            cand --port 'Port to listen on (0 picks a free one)'
            cand -b 'Address to listen on; use 0.0.0.0 or :: to serve other machines, or unix:PATH for a Unix socket (for a proxy in front; not on Windows). Sockets handed over by systemd (socket activation) are used instead'
            cand --bind 'Address to listen on; use 0.0.0.0 or :: to serve other machines, or unix:PATH for a Unix socket (for a proxy in front; not on Windows). Sockets handed over by systemd (socket activation) are used instead'
            cand --allow-host 'Also answer requests whose Host is NAME (.example.com: and its subdomains). Bound to loopback, other names than localhost are refused (DNS rebinding); bound elsewhere, giving names limits requests to them and IP addresses. Repeat, or separate with commas'
            cand --tls-cert 'Serve HTTPS with this certificate chain (PEM); --tls-key gives its key'
            cand --tls-key 'The private key of --tls-cert (PEM)'
            cand --poll 'How often to look at a file or the current slide even without a change event (a change is seen at once through the system''s change events; the poll is the safety net), run a command again, or fetch an image URL again, in milliseconds'
            cand -t 'Content-Type of the parts [default: guessed from the file extension]'
            cand --type 'Content-Type of the parts [default: guessed from the file extension]'
            cand --keepalive 'Send a keep-alive on a stream that has sent nothing for this many seconds, so proxies and GStreamer (which gives up after 15 s) keep idle streams open and vanished clients are noticed: a browser gets the current frame again, a stream reader a header line it ignores, /events a comment line; a relay connects again to an upstream that has sent nothing for three times this long'
            cand --repeat 'Send a stream reader (not a browser) the current frame again after this many seconds without a new one, as OpenCV gives up on a stream after 30 s without a frame; 0 never does, so that a recording gets no duplicate frames'
            cand --write-timeout 'Drop a client that takes less than 64 KiB (or all that is left to send) in this many seconds: slow but steady clients are never cut'
            cand --lines 'Lines of text from stdin shown at once: the live tail of `tail -f log | pushserve -`'
            cand --max-frame 'Skip versions larger than this, keeping the last frame (suffixes K, M, G: powers of 1024)'
            cand --auth 'Ask every client for this user name and password (HTTP Basic authentication; the password may hold colons). Repeat for several accounts. Without TLS in front, they cross the network readable by anyone on the way. PUSHSERVE_AUTH keeps a password out of ps'
            cand --netrc-file 'Take the user name and password of a relayed URL that has none from this netrc file (machine HOST login USER password PASS, as curl --netrc-file and wget read it), where ps does not show them as it shows a URL''s'
            cand --interval 'Time each slide is shown, in milliseconds'
            cand --ext 'File extensions to show, comma-separated (case-insensitive)'
            cand --order 'Order of the slides in each cycle'
            cand --print-completions 'Print the completion script for SHELL and exit'
            cand --tls-self-signed 'Serve HTTPS with a certificate made at start for this machine''s names and addresses, for a quick share on a LAN; its SHA-256 fingerprint goes to stderr, to check against what the browser shows'
            cand --poll-only 'Look at files and folders only every --poll, without change events (for a filesystem whose events are wrong, or to compare)'
            cand --once 'Play each source once (a folder''s cycle, stdin or a relayed stream to its end, one run of each command, a file''s current version), end every stream, and exit'
            cand --cors 'Add Access-Control-Allow-Origin: * to /events, /poll, /snapshot and /status, so pages on other origins can use them'
            cand -q 'Print only errors (wins over --verbose)'
            cand --quiet 'Print only errors (wins over --verbose)'
            cand -v 'Also print one line per finished connection: client, path, status, duration, bytes'
            cand --verbose 'Also print one line per finished connection: client, path, status, duration, bytes'
            cand -r 'Include files in subfolders'
            cand --recursive 'Include files in subfolders'
            cand --follow-links 'Also walk symlinked folders that lead outside the folder (symlinked files are always shown)'
            cand --print-manpage 'Print the man page (roff) and exit'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}
