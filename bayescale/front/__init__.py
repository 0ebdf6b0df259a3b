"""Front ends: the command line and the HTML or Markdown report."""
