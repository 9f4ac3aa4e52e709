# PostScript input of the ghostscript workload (converted to PDF before the
# runs): n pages, each with a title, a paragraph of numbered words in two
# fonts, and a fan of filled, stroked curves.  The text extracted from the
# PDF contains "Page K of n" for every page.
#   awk -v n=40 -f gen_ps.awk
BEGIN {
  print "%!PS-Adobe-3.0"
  printf "%%%%Pages: %d\n", n
  print "%%EndComments"
  seed = 12345
  for (pg = 1; pg <= n; pg++) {
    printf "%%%%Page: %d %d\n", pg, pg
    printf "/Helvetica-Bold findfont 18 scalefont setfont 72 740 moveto (Page %d of %d) show\n", pg, n
    for (line = 0; line < 40; line++) {
      printf "/%s findfont 9 scalefont setfont 72 %d moveto (", line % 2 ? "Times-Roman" : "Courier", 710 - line * 12
      for (w = 0; w < 12; w++) {
        seed = (seed * 75 + 74) % 65537
        printf "w%d ", seed % 10000
      }
      print ") show"
    }
    print "gsave 306 150 translate"
    for (k = 0; k < 36; k++) {
      printf "%.3f %.3f %.3f setrgbcolor ", (k * 7 % 36) / 36, (k * 11 % 36) / 36, (k * 13 % 36) / 36
      print "newpath 0 0 moveto 40 90 120 60 140 0 curveto closepath gsave fill grestore 0 setgray 0.3 setlinewidth stroke 10 rotate"
    }
    print "grestore showpage"
  }
  print "%%EOF"
}
