#!/usr/bin/perl
# The lab's syslog: Sendmail logs only through syslog(3), to the /dev/log datagram socket, which
# this sandbox lacks. This binds a datagram socket at SOCKET, appends each message to FILE as one
# line, and prints "ready" once bound. sendmail-ns.sh points the MTA's /dev/log at SOCKET.
#   perl scripts/lab/syslog-catcher.pl SOCKET FILE
use strict;
use warnings;
use IO::Handle;
use Socket qw(PF_UNIX SOCK_DGRAM pack_sockaddr_un);

my ($path, $file) = @ARGV;
die "usage: $0 SOCKET FILE\n" unless defined $file;
unlink $path;
socket(my $sock, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
bind($sock, pack_sockaddr_un($path)) or die "bind $path: $!\n";
chmod 0666, $path;
open(my $out, '>>', $file) or die "$file: $!\n";
$out->autoflush(1);
$SIG{TERM} = sub { unlink $path; exit 0 };
STDOUT->autoflush(1);
print "ready\n";
while (defined recv($sock, my $msg, 65536, 0)) {
  $msg =~ s/\0+$//;
  $msg =~ s/\n*$/\n/;
  print $out $msg;
}
