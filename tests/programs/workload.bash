# Deterministic bash workload for the cmalloc program tests: indexed and
# associative arrays, string operations, parameter expansion, here-strings
# and functions; bash allocates for nearly every one of these.
set -u
n=${1:-20000}

declare -a words=()
declare -A freq=()
declare -A first=()
seed=12345
letters=abcdefghijklmnopqrstuvwxyz

for ((i = 0; i < n; i++)); do
  seed=$(((seed * 1103515245 + 12345) % 2147483648))
  len=$((1 + (seed >> 8) % 7))
  w=""
  for ((k = 0; k < len; k++)); do
    w+=${letters:$(((seed >> (k * 3 + 4)) % 26)):1}
  done
  words+=("$w")
  freq[$w]=$((${freq[$w]:-0} + 1))
  [[ -n ${first[$w]:-} ]] || first[$w]=$i
done
echo "words=${#words[@]} distinct=${#freq[@]}"

# string operations
joined=${words[*]}
echo "joined length=${#joined}"
upper=${joined^^}
echo "upper sample=${upper:100:40}"
replaced=${joined//a/<A>}
echo "replaced length=${#replaced}"
no_vowels=${joined//[aeiou]/}
echo "no vowels length=${#no_vowels}"
tail3=${joined#* * * }
cut2=${joined% * *}
echo "prefix strip=${tail3:0:30} suffix strip length=${#cut2}"

# arrays: slices, deletion, rebuild
slice=("${words[@]:1000:500}")
echo "slice=${#slice[@]} first=${slice[0]} last=${slice[499]}"
for ((i = 0; i < ${#words[@]}; i += 3)); do unset 'words[i]'; done
words=("${words[@]}")
echo "after unset=${#words[@]}"

# associative array report (keys sorted by a stable rule)
max=0 maxw=""
for w in "${!freq[@]}"; do
  c=${freq[$w]}
  if ((c > max)) || { ((c == max)) && [[ $w < $maxw ]]; }; then
    max=$c maxw=$w
  fi
done
echo "most frequent=$maxw x$max first at ${first[$maxw]}"

# functions with local arrays and string building
build() {
  local -a parts=()
  local i
  for ((i = 0; i < $1; i++)); do parts+=("p$i-${2:i % ${#2}:3}"); done
  local IFS=,
  REPLY="${parts[*]}"
}
total=0
for ((r = 0; r < 200; r++)); do
  build $((r % 50 + 1)) "${joined:r * 10:400}"
  total=$((total + ${#REPLY}))
done
echo "built total=$total"

# read lines from a here-string into an array
mapfile -t lines <<<"${joined// /$'\n'}"
echo "lines=${#lines[@]} line 77=${lines[77]}"
sum=0
for l in "${lines[@]}"; do sum=$((sum + ${#l})); done
echo "sum of line lengths=$sum"
