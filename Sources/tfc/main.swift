import TFDriver
TFCommand.runAsMain()
