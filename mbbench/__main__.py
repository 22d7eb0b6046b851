from mbbench.cli import main

main()
