# Allocation-heavy Ruby workload of the benchmark suite (scripts/bench): a
# word index (hash of arrays), string building and splitting, sorting,
# nested records in a queue and regular expressions, over words drawn from
# a fixed linear congruential sequence.  Prints one line that depends only
# on SCALE.
#   ruby ruby_alloc.rb [SCALE=1]
scale_arg = ARGV[0] || "1"
scale = scale_arg.to_f
$seed = 42
def rnd
  $seed = ($seed * 1103515245 + 12345) % 2147483648
  $seed >> 8
end

syll = %w[ka lo mi ne ru sa ti vo ze pa do gu]
n = (200000 * scale).floor
index = Hash.new { |h, k| h[k] = [] }
count = Hash.new(0)
records = []
sum = 0
n.times do |i|
  w = (1..(2 + rnd % 3)).map { syll[rnd % syll.size] }.join
  index[w] << i
  count[w] += 1
  records << { id: i, word: w, tags: Array.new(3) { syll[rnd % syll.size] } } if i % 4 == 0
  if records.size > 5000
    r = records.shift
    sum = (sum + r[:id] + r[:tags].join(",").size) % 1000000007
  end
end
top = count.keys.sort_by { |w| [-count[w], w] }.first(3)
index.keys.sort.each do |w|
  line = index[w].join(" ")
  parts = line.split(" ")
  sum = (sum + parts.size * w.size) % 1000000007
  sum = (sum + 7) % 1000000007 if line =~ /(\d)\1\1/
end
text = records.map { |r| r[:word] }.join(" ")
vowels = text.scan(/[aeiou]/).size
puts format("ruby_alloc scale=%s words=%d distinct=%d top=%s vowels=%d sum=%d", scale_arg, n,
            count.size, top.join(","), vowels, sum)
