"""The Triton model of a fault-injection variant (tests/server/test_reliability.py copies it into the version folder as
model.py, the production model.py beside it as stanet_model.py): the production adapter, unchanged, whose
model calls go through fault_injection.with_fault. The fault is ended or reported by the production watchdog
and checks, exactly as a real one would be."""

import json
import threading

import fault_injection  # beside this file, like the production files
import stanet_model


class TritonPythonModel(stanet_model.TritonPythonModel):
    def initialize(self, args):
        super().initialize(args)
        mode, delay_s = fault_injection.parse_fault(json.loads(args["model_config"]))
        self.release = threading.Event()
        self.run.run = fault_injection.with_fault(self.run.run, mode, delay_s, self.release)  # inside the watchdog

    def finalize(self):
        self.release.set()  # a hung call returns, so the stub process can exit
        super().finalize()
