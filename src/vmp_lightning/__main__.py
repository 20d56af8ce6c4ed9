from vmp_lightning.cli import main

main()
