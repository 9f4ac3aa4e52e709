# Allocation-heavy, deterministic Perl workload for the cmalloc program
# tests: hashes of arrays, string building, regexes, substitutions, sort.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $seed = 20240607;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed >> 4; }
sub word {
    my $len = 1 + rnd() % 9;
    return join '', map { chr(97 + rnd() % 26) } 1 .. $len;
}

my $n = shift // 120000;
my (%count, %where, @all);
for my $i (1 .. $n) {
    my $w = word();
    $count{$w}++;
    push @{ $where{ substr($w, 0, 2) } }, $i;
    push @all, $w;
}
print "words: ", scalar(@all), " distinct: ", scalar(keys %count), "\n";

# sort: by frequency, then alphabetically; numeric and string sorts
my @top = (sort { $count{$b} <=> $count{$a} or $a cmp $b } keys %count)[0 .. 14];
print "top: @top\n";
my @lens = sort { $a <=> $b } map { length } @all;
print "median length: $lens[@lens / 2]\n";
my @prefix = sort { @{ $where{$b} } <=> @{ $where{$a} } or $a cmp $b } keys %where;
print "busiest prefixes: @prefix[0 .. 9]\n";

# regexes over a big string
my $text = join ' ', @all;
my %syll;
$syll{$1}++ while $text =~ /\b([bcdfg][aeiou][a-z]?)/g;
my @s = (sort { $syll{$b} <=> $syll{$a} or $a cmp $b } keys %syll)[0 .. 9];
print "syllables: ", join(',', map { "$_=$syll{$_}" } @s), "\n";
(my $up = $text) =~ s/\b([a-z])([a-z]*)\b/\U$1\E$2/g;
(my $vow = $text) =~ tr/aeiou/AEIOU/;
my @split = split /[aeiou]+/, $text;
print "split pieces: ", scalar(@split), "\n";
print "md5: ", md5_hex($up), " ", md5_hex($vow), "\n";

# grow and shrink hashes and strings
my %big;
for my $i (1 .. 50000) { $big{"k$i"} = "v" x ($i % 300) }
delete $big{"k$_"} for grep { $_ % 3 } 1 .. 50000;
my $sum = 0;
$sum += length $big{$_} for keys %big;
print "remaining: ", scalar(keys %big), " bytes: $sum\n";
my $s = '';
$s .= sprintf("%05d,", $_) for 1 .. 100000;
$s =~ s/(\d)\1/<$1$1>/g;
print "string: ", length($s), " ", md5_hex($s), "\n";
