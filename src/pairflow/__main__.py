from pairflow.cli import main

main()
