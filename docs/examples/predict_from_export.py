#!/usr/bin/env python3
"""Predicts from a koopstream model exported as a MATLAB .mat file, without the service.

    python predict_from_export.py MODEL.mat START.json HORIZON

MODEL.mat is `GET /v1/streams/{id}/model?format=mat` or `koopstream fit --output
MODEL.mat`. START.json holds the measured history, oldest row first, in raw units: either
a list of state rows, or {"x": [state rows], "u": [HORIZON input rows]} (the inputs applied
at each step, required when the model has inputs). At least 1 + delay rows are needed.

The script lifts the newest state itself (standardisation, then the observables in the
exported order: the monomials of `poly_exponents` (state, constant, products), the RBF
Gaussians, the Fourier features, the delayed states), builds the lifted model as a
python-control state-space object, control.ss(A, B, C, D, Ts), simulates it with
control.forced_response, and reads out x = C z + c_offset. It prints
{"channels", "units", "t", "x"} as JSON, x with HORIZON rows: the same numbers as
POST /v1/streams/{id}/predict with mode "linear" and the same start rows and inputs.
Needs numpy, scipy and python-control (tests/model_export/setup-venv.sh pins them).
"""

import json
import sys

import control
import numpy as np
import scipy.io


def text(value):
    """A MATLAB char array as loadmat returns it (an empty one has no element)."""
    return str(value.item()) if value.size else ""


def texts(cell):
    """A cell array of char (one name per entry) as a list of str."""
    return [text(entry) for entry in cell.ravel()]


def load_model(path):
    m = scipy.io.loadmat(path)
    if text(m["format"]) != "koopstream.model.v1":
        raise SystemExit(f"{path}: not a koopstream.model.v1 export")
    n = len(m["state_names"])
    return {
        "A": m["A"],
        "B": m["B"],
        "C": m["C"],
        "D": m["D"],
        "Ts": float(m["Ts"].item()),
        "c_offset": m["c_offset"].ravel(),
        "state_names": texts(m["state_names"]),
        "state_units": texts(m["state_units"]),
        "input_names": texts(m["input_names"]),
        # Empty when the model was fitted without standardisation: z = x.
        "std_mean": m["std_mean"].ravel() if m["std_mean"].size else np.zeros(n),
        "std_scale": m["std_scale"].ravel() if m["std_scale"].size else np.ones(n),
        "poly_exponents": m["poly_exponents"].reshape(-1, n),
        "rbf_centres": m["rbf_centres"].reshape(-1, n),
        "rbf_width": float(m["rbf_width"].item()) if m["rbf_width"].size else 1.0,
        "fourier_w": m["fourier_w"].reshape(-1, n),
        "fourier_b": m["fourier_b"].ravel(),
        "delay": int(m["delay"].item()),
        "observables": texts(m["observables"]),
    }


def lift(model, history):
    """psi of the newest row of `history` (raw units, oldest first, >= 1 + delay rows)."""
    need = 1 + model["delay"]
    if len(history) < need:
        raise SystemExit(f"the model needs {need} start rows (1 + delay), got {len(history)}")
    z = (np.asarray(history[-need:], dtype=float) - model["std_mean"]) / model["std_scale"]
    now = z[-1]
    parts = [
        # State, constant and monomials: each the product of the powers in its row.
        np.prod(now ** model["poly_exponents"], axis=1),
        # Gaussians exp(-|z - c|^2 / (2 width^2)) on the standardised state.
        np.exp(-0.5 * np.sum((now - model["rbf_centres"]) ** 2, axis=1) / model["rbf_width"] ** 2),
        # Random Fourier features cos(w . z + b).
        np.cos(model["fourier_w"] @ now + model["fourier_b"]),
    ]
    # Delays: z(k-1), ..., z(k-delay), newest first.
    parts.extend(z[-1 - lag] for lag in range(1, need))
    psi = np.concatenate(parts)
    if psi.shape != (model["A"].shape[0],):
        raise SystemExit(f"lifted {psi.shape[0]} observables, the model has {model['A'].shape[0]}")
    return psi


def predict(model, history, inputs, horizon):
    """The states 1..horizon steps after the newest start row, as (horizon, n) rows."""
    A, B, C, D = model["A"], model["B"], model["C"], model["D"]
    m = B.shape[1]
    if m == 0:
        # A model without inputs: one zero input column keeps the ss object ordinary.
        B, D = np.zeros((A.shape[0], 1)), np.zeros((C.shape[0], 1))
        u = np.zeros((1, horizon + 1))
    else:
        u = np.zeros((m, horizon + 1))
        u[:, :horizon] = np.asarray(inputs, dtype=float).reshape(horizon, m).T
    system = control.ss(A, B, C, D, model["Ts"])
    t = model["Ts"] * np.arange(horizon + 1)
    # z(k+1) = A z(k) + B u(k) from z(0) = psi; y(k) = C z(k) + D u(k), D = 0.
    response = control.forced_response(system, T=t, U=u, X0=lift(model, history))
    y = np.atleast_2d(response.outputs)
    return (y[:, 1:] + model["c_offset"][:, None]).T


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__)
    model = load_model(argv[1])
    with open(argv[2], encoding="utf-8") as f:
        start = json.load(f)
    rows, inputs = (start, None) if isinstance(start, list) else (start["x"], start.get("u"))
    horizon = int(argv[3])
    if model["B"].shape[1] and inputs is None:
        raise SystemExit("the model has inputs: START.json needs \"u\" with HORIZON rows")
    x = predict(model, rows, inputs, horizon)
    print(json.dumps({
        "channels": model["state_names"],
        "units": model["state_units"],
        "t": [model["Ts"] * k for k in range(1, horizon + 1)],
        "x": x.tolist(),
    }))


if __name__ == "__main__":
    main(sys.argv)
