#!/usr/bin/perl
# Allocation-heavy Perl workload of the benchmark suite (scripts/bench):
# a word index (hash of arrays), string building and splitting, sorting,
# nested records and regular expressions, over words drawn from a fixed
# linear congruential sequence.  Prints one line that depends only on
# SCALE (hash order is never printed: keys are sorted).
#   perl perl_alloc.pl [SCALE=1]
use strict;
use warnings;

my $scale = $ARGV[0] // 1;
my $seed = 42;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed >> 8; }

my @syll = qw(ka lo mi ne ru sa ti vo ze pa do gu);
my $n = int(200000 * $scale);
my (%index, %count, @records);
my $sum = 0;
for my $i (0 .. $n - 1) {
    my $w = join '', map { $syll[rnd() % @syll] } 1 .. (2 + rnd() % 3);
    push @{ $index{$w} }, $i;
    $count{$w}++;
    if ($i % 4 == 0) {
        push @records, { id => $i, word => $w, tags => [ map { $syll[rnd() % @syll] } 1 .. 3 ] };
    }
    if (@records > 5000) {
        my $r = shift @records;
        $sum = ($sum + $r->{id} + length(join ',', @{ $r->{tags} })) % 1000000007;
    }
}
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 9];
for my $w (sort keys %index) {
    my $line = join ' ', @{ $index{$w} };
    my @parts = split / /, $line;
    $sum = ($sum + @parts * length($w)) % 1000000007;
    $sum = ($sum + 7) % 1000000007 if $line =~ /(\d)\1\1/;
}
my $text = join ' ', map { $_->{word} } @records;
my $vowels = () = $text =~ /[aeiou]/g;
printf "perl_alloc scale=%s words=%d distinct=%d top=%s vowels=%d sum=%d\n", $scale, $n,
    scalar(keys %count), join(',', @top[0 .. 2]), $vowels, $sum;
