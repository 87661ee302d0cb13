from docmill.cli import main

main()
