from vmp_lightning.commands import main

main()
