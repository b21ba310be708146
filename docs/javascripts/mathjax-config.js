// MathJax 3 for pymdownx.arithmatex (generic mode): typeset only the math that
// arithmatex marked. MathJax itself is vendored next to this file
// (javascripts/mathjax/tex-svg-full.js, MathJax 3.2.2, Apache-2.0): the SVG
// output needs no web fonts and every TeX extension is built in, so nothing is
// fetched from the network.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
  svg: {
    fontCache: "global",
  },
};
