from edumail.cli import main

main()
