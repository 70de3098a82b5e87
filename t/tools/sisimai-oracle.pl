#!/usr/bin/perl
# The oracle of t/dsn-sisimai.bats: Debian's Sisimai (libsisimai-perl) reads
# each notice named on the command line, and one line is printed per file:
#   FILE<TAB>yes|no<TAB>addr:permanent|temporary,...  (addresses sorted)
# "no" when Sisimai finds no bounce in it: no result, or only results whose
# reason says the message is not a non-delivery notice (an auto-reply, a
# success report, a complaint). Sisimai does not say "the sender gave up";
# its delivery status does: 4.x.x or Action delayed is temporary, anything
# else permanent.
use strict;
use warnings;
use Sisimai;

my %not_a_bounce = map { $_ => 1 } qw(vacation delivered feedback);
for my $file (@ARGV) {
    my $res = eval { Sisimai->make($file, delivered => 1) } || [];
    my %seen;
    for my $d (@$res) {
        next if $not_a_bounce{ $d->reason // '' };
        my $addr = lc($d->recipient->address // '');
        my $status = $d->deliverystatus // '';
        my $action = $d->action // '';
        my $temp = ($action eq 'delayed' || $status =~ /^4/) ? 'temporary' : 'permanent';
        $seen{$addr} = $temp unless exists $seen{$addr} && $seen{$addr} eq 'permanent';
    }
    my @r = map { "$_:$seen{$_}" } sort keys %seen;
    printf "%s\t%s\t%s\n", $file, (@r ? 'yes' : 'no'), join(',', @r);
}
