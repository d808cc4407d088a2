import TFDriver
TFCommand.main()
