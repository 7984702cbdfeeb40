"""python train_from_url.py URL MD5 TRAIN-ARGUMENTS...: `train`, with cifar10's download pointed at URL (a
server on 127.0.0.1 that a test runs) and its expected md5 set to MD5: a real train process that downloads
a tiny archive in CIFAR-10's format instead of the 170 MB one, and never touches the network."""
import sys

import runkit.data.cifar10 as cifar10
from runkit import cli
from runkit.training import cli_main, stopping

if __name__ == "__main__":
    stopping.install()
    cifar10.URL, cifar10.MD5 = sys.argv[1:3]
    cli.run_main("train", cli_main.main, sys.argv[3:])
