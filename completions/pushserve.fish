complete -c pushserve -l exec -d 'Serve the output of CMD, run with sh -c (cmd /C on Windows) every --poll ms after the last run ends (like watch): text, or an image by its first bytes, or --type. A run that fails or takes over 10 s (or --poll) keeps the last frame. NAME=CMD names it. Repeat for several' -r
complete -c pushserve -s p -l port -d 'Port to listen on (0 picks a free one)' -r
complete -c pushserve -s b -l bind -d 'Address to listen on; use 0.0.0.0 or :: to serve other machines, or unix:PATH for a Unix socket (for a proxy in front; not on Windows). Sockets handed over by systemd (socket activation) are used instead' -r
complete -c pushserve -l allow-host -d 'Also answer requests whose Host is NAME (.example.com: and its subdomains). Bound to loopback, other names than localhost are refused (DNS rebinding); bound elsewhere, giving names limits requests to them and IP addresses. Repeat, or separate with commas' -r
complete -c pushserve -l tls-cert -d 'Serve HTTPS with this certificate chain (PEM); --tls-key gives its key' -r -F
complete -c pushserve -l tls-key -d 'The private key of --tls-cert (PEM)' -r -F
complete -c pushserve -l poll -d 'How often to look at a file or the current slide even without a change event (a change is seen at once through the system\'s change events; the poll is the safety net), run a command again, or fetch an image URL again, in milliseconds' -r
complete -c pushserve -s t -l type -d 'Content-Type of the parts [default: guessed from the file extension]' -r
complete -c pushserve -l keepalive -d 'Send a keep-alive on a stream that has sent nothing for this many seconds, so proxies and GStreamer (which gives up after 15 s) keep idle streams open and vanished clients are noticed: a browser gets the current frame again, a stream reader a header line it ignores, /events a comment line; a relay connects again to an upstream that has sent nothing for three times this long' -r
complete -c pushserve -l repeat -d 'Send a stream reader (not a browser) the current frame again after this many seconds without a new one, as OpenCV gives up on a stream after 30 s without a frame; 0 never does, so that a recording gets no duplicate frames' -r
complete -c pushserve -l write-timeout -d 'Drop a client that takes less than 64 KiB (or all that is left to send) in this many seconds: slow but steady clients are never cut' -r
complete -c pushserve -l lines -d 'Lines of text from stdin shown at once: the live tail of `tail -f log | pushserve -`' -r
complete -c pushserve -l max-frame -d 'Skip versions larger than this, keeping the last frame (suffixes K, M, G: powers of 1024)' -r
complete -c pushserve -l auth -d 'Ask every client for this user name and password (HTTP Basic authentication; the password may hold colons). Repeat for several accounts. Without TLS in front, they cross the network readable by anyone on the way. PUSHSERVE_AUTH keeps a password out of ps' -r
complete -c pushserve -l netrc-file -d 'Take the user name and password of a relayed URL that has none from this netrc file (machine HOST login USER password PASS, as curl --netrc-file and wget read it), where ps does not show them as it shows a URL\'s' -r -F
complete -c pushserve -l interval -d 'Time each slide is shown, in milliseconds' -r
complete -c pushserve -l ext -d 'File extensions to show, comma-separated (case-insensitive)' -r
complete -c pushserve -l order -d 'Order of the slides in each cycle' -r -f -a "name\t'By path, numbers in natural order (img2 before img10)'
mtime\t'Oldest modification first'
random\t'Shuffled anew every cycle'"
complete -c pushserve -l print-completions -d 'Print the completion script for SHELL and exit' -r -f -a "bash\t''
elvish\t''
fish\t''
powershell\t''
zsh\t''"
complete -c pushserve -l tls-self-signed -d 'Serve HTTPS with a certificate made at start for this machine\'s names and addresses, for a quick share on a LAN; its SHA-256 fingerprint goes to stderr, to check against what the browser shows'
complete -c pushserve -l poll-only -d 'Look at files and folders only every --poll, without change events (for a filesystem whose events are wrong, or to compare)'
complete -c pushserve -l once -d 'Play each source once (a folder\'s cycle, stdin or a relayed stream to its end, one run of each command, a file\'s current version), end every stream, and exit'
complete -c pushserve -l cors -d 'Add Access-Control-Allow-Origin: * to /events, /poll, /snapshot and /status, so pages on other origins can use them'
complete -c pushserve -s q -l quiet -d 'Print only errors (wins over --verbose)'
complete -c pushserve -s v -l verbose -d 'Also print one line per finished connection: client, path, status, duration, bytes'
complete -c pushserve -s r -l recursive -d 'Include files in subfolders'
complete -c pushserve -l follow-links -d 'Also walk symlinked folders that lead outside the folder (symlinked files are always shown)'
complete -c pushserve -l print-manpage -d 'Print the man page (roff) and exit'
complete -c pushserve -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pushserve -s V -l version -d 'Print version'
