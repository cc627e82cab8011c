from pairflow.cli import main

main(prog_name="pairflow")
