# SMT-LIB input of the z3 workload: the pigeonhole problem with n+1
# pigeons and n holes, as Booleans (one clause per pigeon, one exclusion
# per pair of pigeons in a hole).  It is unsatisfiable, and clause learning
# needs exponentially many clauses for it, so z3 allocates throughout.
# z3 prints "unsat".
#   awk -v n=9 -f gen_smt.awk
BEGIN {
  for (p = 0; p <= n; p++)
    for (h = 0; h < n; h++)
      printf "(declare-const b%d_%d Bool)\n", p, h
  for (p = 0; p <= n; p++) {
    printf "(assert (or"
    for (h = 0; h < n; h++)
      printf " b%d_%d", p, h
    print "))"
  }
  for (h = 0; h < n; h++)
    for (p = 0; p <= n; p++)
      for (q = p + 1; q <= n; q++)
        printf "(assert (or (not b%d_%d) (not b%d_%d)))\n", p, h, q, h
  print "(check-sat)"
}
