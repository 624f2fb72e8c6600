"""Tools that make a ReLU model sparse-ready (PowerInfer released none of these):

    profile.py          run the engine over a corpus, count how often each FFN neuron fires
    train_predictor.py  train the per-layer activity predictors (fc1 -> ReLU -> fc2) on what the engine recorded
    place.py            choose the neurons that live on the GPU under a VRAM budget (PowerInfer's .generated.gpuidx)
    export.py           write PowerInfer's sparse layout (.powerinfer.gguf, F16 and Q4_0 "q4") with the predictors
    activation_profile.py, gpuidx.py   the file formats profile/place share (ours and PowerInfer's)

Files passed between them (numpy arrays; shapes in numpy order, rows first):

    activation profile  .npz  n_layer, n_ff, n_tokens (int64 scalars); counts_{L} int64 [n_ff]: tokens
                              for which neuron i of layer L fired (h != 0); model, corpus (str)
    predictors          .npz  n_layer (int64 scalar); fc1_{L} float32 [H_L, n_embd] and fc2_{L} float32
                              [n_ff, H_L] (GGUF dims [n_embd, H_L] and [H_L, n_ff]); threshold (float32
                              scalar, the score at or above which a neuron counts as active)

Each module has a main(argv) used by the powerinfer-py CLI (`powerinfer-py profile|train-predictor|
place|export`). torch, scipy and matplotlib are optional extras (`pip install ".[train]"`).
"""
