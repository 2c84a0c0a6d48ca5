export const USAGE = `usage: checkid <command> [options]

commands:
  check    decide one sender from the command line
           checkid check --ip IP [--id DOMAIN] [--helo NAME] [--from ADDR] [--rcpt ADDR]...
                         [--message FILE.eml] [--config FILE] [--resolver HOST:PORT] [--json]
  serve    start every listener the config enables (milter, http, dashboard, policy, readsocket, smtp,
           siq_server .listen)
           checkid serve [--config FILE] [--resolver HOST:PORT]
  http     start the HTTP API alone (POST /v1/check)
           checkid http --listen 127.0.0.1:8080 [--config FILE] [--resolver HOST:PORT]
  milter   start the milter alone (Postfix, Sendmail: docs/adapters/milter.md)
           checkid milter --listen inet:127.0.0.1:8891|unix:/run/checkid/milter.sock [--config FILE] [--resolver HOST:PORT]
  policy   start the Postfix policy delegation server alone (docs/adapters/postfix-policy.md)
           checkid policy --listen inet:127.0.0.1:9998|unix:/path [--config FILE] [--resolver HOST:PORT]
  readsocket  start the server Exim's ACLs ask with readsocket (docs/adapters/exim.md)
           checkid readsocket --listen inet:127.0.0.1:9997|unix:/path [--config FILE] [--resolver HOST:PORT]
  qmail-queue  run as qmail's QMAILQUEUE: check, then hand over to qmail-queue (docs/adapters/qmail.md)
           checkid qmail-queue [--qmail-queue /var/qmail/bin/qmail-queue] [--config FILE] [--resolver HOST:PORT]
  integrate  print the set-up for an MTA (postfix, sendmail, exim, qmail, exchange)
           checkid integrate <mta> [--config FILE]
  doctor   look for the classic set-up mistakes (resolver refused by Spamhaus, DNS timeouts, no IPv6,
           unsafe milter socket directory, Postfix not asking checkid, clock) and say how to fix each
           checkid doctor [--config FILE] [--resolver HOST:PORT] [--postfix-config FILE] [--time-url URL] [--json]
  smtp     start the SMTP front-end alone: speaks ID, relays to the MTA behind it (docs/adapters/smtp-front.md)
           checkid smtp --listen 127.0.0.1:2525 --relay 127.0.0.1:25 [--tls-cert FILE --tls-key FILE] [--hostname NAME]
                        [--config FILE] [--resolver HOST:PORT]
  siq      ask SIQ reputation servers about an IP and domain (exit status: docs/siq.md)
           checkid siq query --server HOST[:PORT]... --ip IP [--domain DOMAIN] [--json] [--timeout MS]
           checkid siq serve --listen HOST:PORT [--web-listen HOST:PORT] [--db FILE] [--config FILE] [--resolver HOST:PORT]  (also: checkid siq-server)
           checkid siq account add --email ADDRESS [--ip IP]... [--password-stdin] [--db FILE] [--json]
           checkid siq account passwd --email ADDRESS --password-stdin [--db FILE] | checkid siq account list
           (the SIQ server: docs/siq-server.md)
  replay   stored messages (mbox, Maildir, .eml, directories) through the current policy, offline,
           with a report (docs/replay.md)
           checkid replay <mbox|maildir|file|dir>... [--config FILE] [--resolver HOST:PORT] [--jobs N]
                          [--report DIR] [--envelope FILE.jsonl] [--trusted-hops N | --received-by HOST]...
                          [--mbox-format mboxrd|mboxo] [--max-message-size 64M] [--sample 200000] [--quiet]
  dashboard  the dashboard runs under serve (dashboard.listen, default 127.0.0.1:8025; docs/dashboard.md)
           checkid dashboard hash-password [--user NAME]   prints a dashboard.users entry
  (installing under systemd with the Debian paths: docs/install.md)

Exit status: 0 whatever the verdict (doctor: 1 when a check fails); 2 for usage errors, 3 for configuration errors.
Docs: docs/cli.md, docs/configuration.md, docs/operations.md
`;
