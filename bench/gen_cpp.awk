# C++ input of the g++ workload: n class templates, each with STL
# containers (vector, map, string, unordered_map), lambdas passed to
# algorithms and a virtual method, instantiated for two types, and a main
# that calls them all.  It is meant to make the compiler's front end
# instantiate many templates and its optimiser inline many calls.
#   awk -v n=40 -f gen_cpp.awk
BEGIN {
  print "#include <algorithm>"
  print "#include <map>"
  print "#include <numeric>"
  print "#include <string>"
  print "#include <unordered_map>"
  print "#include <vector>"
  print "#include <cstdio>"
  print "struct Base { virtual ~Base() {} virtual long run(int n) = 0; };"
  for (i = 0; i < n; i++) {
    printf "template <typename T> struct W%d : Base {\n", i
    printf "  std::vector<T> v; std::map<std::string, T> m; std::unordered_map<int, std::string> u;\n"
    printf "  long run(int n) override {\n"
    printf "    for (int k = 0; k < n; k++) { v.push_back(T(k * %d %% 97)); m[std::to_string(k %% %d)] += T(k); u[k %% 13] += char('a' + k %% 26); }\n", i + 3, i + 5
    printf "    std::sort(v.begin(), v.end(), [](const T &a, const T &b) { return a > b; });\n"
    printf "    auto it = std::remove_if(v.begin(), v.end(), [](const T &x) { return int(x) %% %d == 0; });\n", i % 5 + 2
    printf "    v.erase(it, v.end());\n"
    printf "    long s = std::accumulate(v.begin(), v.end(), 0L, [](long a, const T &x) { return a + long(x); });\n"
    printf "    for (auto &kv : m) s += long(kv.second) * long(kv.first.size());\n"
    printf "    for (auto &kv : u) s += long(kv.second.size());\n"
    printf "    return s;\n  }\n};\n"
  }
  print "int main() {"
  print "  long total = 0;"
  for (i = 0; i < n; i++) {
    printf "  { W%d<int> a; W%d<double> b; Base *p = &a, *q = &b; total += p->run(%d) + q->run(%d); }\n", i, i, 50 + i, 60 + i
  }
  print "  std::printf(\"%ld\\n\", total);"
  print "  return 0;"
  print "}"
}
