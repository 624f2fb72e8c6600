"""The GPU split of a ReLU model: the hot neurons on a device, the cold ones on the CPU.

    python examples/gpu_split.py                      # the bundled model, on the CPU stand-in device
    python examples/gpu_split.py MODEL.powerinfer.gguf --device cuda --budget 12GiB --profile P.npz

It profiles how often each neuron fires over a little text (or reads --profile, from
`powerinfer-py profile`), lets our solver place the hottest neurons under the budget (written as
MODEL.generated.gpuidx), loads the model with the split, prints what went where, and generates.
Without a GPU, "cpu-standin" runs the same placement and merge on a CPU device with buffers of its
own: the text is the one the CPU path gives.
"""
import argparse
import os
import shutil
import tempfile

from powerinfer_py import Llama
from powerinfer_py.assets import bundled_model_path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("model", nargs="?", default=None)
ap.add_argument("--device", default="cpu-standin")
ap.add_argument("--budget", default=None, help="bytes or text such as 12GiB (default: the non-FFN parts + 3 MiB)")
ap.add_argument("--profile", default=None, help="an activation profile .npz (default: profile a little text now)")
args = ap.parse_args()

model = args.model
if model is None:  # a copy of the bundled model, so that its gpuidx can be written beside it
    model = os.path.join(tempfile.mkdtemp(), "relu-django-18m.q4.powerinfer.gguf")
    shutil.copy(bundled_model_path(), model)

profile = args.profile
if profile is None:
    from powerinfer_py.tools.activation_profile import save_profile_npz
    from powerinfer_py.tools.profile import profile_counts

    text = open(__file__, encoding="utf-8").read() * 4  # any text of the model's kind (code, here)
    profile = os.path.join(tempfile.mkdtemp(), "profile.npz")
    save_profile_npz(profile_counts(model, [text], max_tokens=4000, progress=False), profile)

budget = args.budget
if budget is None:  # what goes to the device before any FFN neuron, plus 3 MiB for hot rows
    from powerinfer_py.tools.place import plan_budget, read_model_facts

    big = 1 << 40
    budget = big - plan_budget(read_model_facts(model), big, n_ctx=512).ffn + (3 << 20)

with Llama(model, n_ctx=512, verbose=False, offload_device=args.device, vram_budget=budget,
           offload_profile=profile) as llm:
    split = llm.gpu_split()
    print(f"device {split['device']}: {split['hot_neurons']} of {split['total_neurons']} FFN neurons, "
          f"{split['used_bytes'] / 2**20:.2f} MiB")
    for layer in split["layers"]:
        print(f"  layer {layer['layer']}: {layer['hot_neurons']} hot ({layer['share']:.0%})")
    out = llm("from django.db import models\n\n\nclass", max_tokens=48, temperature=0.0)
    print(out["choices"][0]["text"])
