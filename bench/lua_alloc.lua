-- Allocation-heavy Lua workload of the benchmark suite (scripts/bench): a
-- word index (table of arrays), string building with table.concat and
-- gsub, sorting, nested records and a queue of them, over words drawn from
-- a fixed linear congruential sequence.  Prints one line that depends only
-- on SCALE (table order is never printed: keys are sorted).
--   lua5.4 lua_alloc.lua [SCALE=1]
local scale = tonumber(arg[1] or "1")
local seed = 42
local function rnd()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed >> 8
end

local syll = { "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "do", "gu" }
local n = math.floor(200000 * scale)
local index, count, records, head, tail = {}, {}, {}, 1, 0
local sum = 0
for i = 0, n - 1 do
  local parts = {}
  for k = 1, 2 + rnd() % 3 do parts[k] = syll[rnd() % #syll + 1] end
  local w = table.concat(parts)
  local list = index[w]
  if not list then list = {}; index[w] = list end
  list[#list + 1] = i
  count[w] = (count[w] or 0) + 1
  if i % 4 == 0 then
    tail = tail + 1
    records[tail] = { id = i, word = w,
      tags = { syll[rnd() % #syll + 1], syll[rnd() % #syll + 1], syll[rnd() % #syll + 1] } }
  end
  if tail - head + 1 > 5000 then
    local r = records[head]
    records[head] = nil
    head = head + 1
    sum = (sum + r.id + #table.concat(r.tags, ",")) % 1000000007
  end
end
local words = {}
for w in pairs(count) do words[#words + 1] = w end
table.sort(words)
local distinct = #words
local bycount = {}
for i, w in ipairs(words) do bycount[i] = w end
table.sort(bycount, function(a, b)
  if count[a] ~= count[b] then return count[a] > count[b] end
  return a < b
end)
for _, w in ipairs(words) do
  local strs = {}
  for k, v in ipairs(index[w]) do strs[k] = tostring(v) end
  local line = table.concat(strs, " ")
  local m = 0
  for _ in line:gmatch("%S+") do m = m + 1 end
  sum = (sum + m * #w) % 1000000007
  if line:find("(%d)%1%1") then sum = (sum + 7) % 1000000007 end
end
local live = {}
for k = head, tail do live[#live + 1] = records[k].word end
local text = table.concat(live, " ")
local _, vowels = text:gsub("[aeiou]", "")
print(string.format("lua_alloc scale=%s words=%d distinct=%d top=%s,%s,%s vowels=%d sum=%d",
  arg[1] or "1", n, distinct, bycount[1], bycount[2], bycount[3], vowels, sum))
