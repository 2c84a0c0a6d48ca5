#!/bin/sh
# Runs a command (the lab's Sendmail) in its own UTS and mount namespaces:
#   unshare -u -m sh scripts/lab/sendmail-ns.sh DIR HOSTNAME COMMAND [ARGS...]
# - HOSTNAME: Sendmail wants a dotted host name of its own; with the sandbox's bare "vm" it sleeps
#   a minute per start ("My unqualified host name ... unknown"). The name is set in this namespace
#   only, and resolves to nothing, so 127.0.0.1 stays "not us" and SMART_HOST [127.0.0.1] works.
# - /dev/log: Sendmail logs only through syslog(3). A private tmpfs on /dev holds the usual device
#   nodes (bind-mounted from the real /dev) and a log symlink to DIR/log.sock, where
#   syslog-catcher.pl listens. Nothing outside the namespace changes, and its mounts go with it.
set -eu
dir=$1
name=$2
shift 2
mkdir -p "$dir/realdev"
mount --rbind /dev "$dir/realdev"
mount -t tmpfs -o mode=755 checkid-lab-dev /dev
for n in null zero full random urandom tty; do
  touch "/dev/$n"
  mount --bind "$dir/realdev/$n" "/dev/$n"
done
ln -s /proc/self/fd /dev/fd
mkdir /dev/shm /dev/pts
ln -s "$dir/log.sock" /dev/log
hostname "$name"
exec "$@"
