from recruitmail.cli import main

main()
