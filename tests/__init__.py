"""Tests of the workbench: real servers on loopback sockets."""
