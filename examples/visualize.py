"""Pictures of a small MLP with dropout: its forward graph, its gradients, its train and predict functions.

Writes into --out (default out/visualize, as every example writes into out/<its name>):
  forward.<fmt>             the cost, as built (the dropout box, orange, is phase-dependent)
  gradient.<fmt>            the cost and its gradients (one lilac 'gradients' box)
  gradient_expanded.<fmt>   the same with every node drawn, each group a labelled frame
  train.<fmt>               the compiled train function: a dropout box, SGD's boxes updating the weights
  predict.<fmt>             the compiled predict function: no dropout left at all
  train_vs_predict.<fmt>    the two side by side, what only one holds outlined in pink
  explorer.html             the interactive explorer of the two side by side (any browser, no install)
  train.txt, predict.txt    sg.debugprint of the two functions (add expand=True for every node)
Uses Graphviz's `dot` when installed, else matplotlib (or choose with --renderer).
"""

import argparse
import os

import numpy as np

import symgraph as sg

options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
options.add_argument("--out", default="out/visualize", help="folder for the pictures (default out/visualize)")
options.add_argument("--format", default="png", choices=["png", "svg", "pdf"], help="picture format (default png)")
options.add_argument(
    "--renderer",
    default="auto",
    choices=["auto", "graphviz", "matplotlib"],
    help="'graphviz' needs the dot program; 'matplotlib' works without it (default auto: dot if installed)",
)
args = options.parse_args()

# ----------------------------------------------------------------------------------------------
rng = np.random.default_rng(0)
x = sg.tensor("x", shape=(None, 4))
t = sg.ivector("t")
W1 = sg.shared(rng.normal(size=(4, 16)) * 0.5, name="W1", shape=(4, 16))
b1 = sg.shared(np.zeros(16), name="b1", shape=(16,))
W2 = sg.shared(rng.normal(size=(16, 3)) * 0.5, name="W2", shape=(16, 3))
b2 = sg.shared(np.zeros(3), name="b2", shape=(3,))
hidden = sg.nn.relu(x @ W1 + b1)
hidden.name = "hidden"
dropped = sg.nn.dropout(hidden, rate=0.5)
dropped.name = "dropped"
probabilities = sg.nn.softmax(dropped @ W2 + b2)
probabilities.name = "probabilities"
cost = sg.nn.categorical_crossentropy(probabilities, t).mean()
cost.name = "cost"
params = [W1, b1, W2, b2]
grads = sg.grad(cost, params)
for param, grad in zip(params, grads):
    grad.name = f"d_cost/d_{param.name}"
train = sg.function([x, t], cost, updates=sg.optim.sgd(cost, params, lr=0.1), phase="train", name="train")
predict = sg.function([x], probabilities.argmax(axis=1), phase="predict", name="predict")
# ----------------------------------------------------------------------------------------------

os.makedirs(args.out, exist_ok=True)


def picture(name, obj, **options):
    path = os.path.join(args.out, f"{name}.{args.format}")
    sg.plot(obj, path, renderer=args.renderer, **options)
    print(f"wrote {path}")


try:
    picture("forward", cost)
    picture("gradient", [cost, *grads])
    picture("gradient_expanded", [cost, *grads], expand=True)
    picture("train", train)
    picture("predict", predict)
    picture("train_vs_predict", train, compare=predict, titles=["train: dropout draws a mask", "predict: no dropout"])
except ImportError as error:
    raise SystemExit(f"cannot draw: {error}") from None
explorer = sg.plot([train, predict], os.path.join(args.out, "explorer.html"), titles=["train", "predict"])
print(f"wrote {explorer}")
for name, function in (("train", train), ("predict", predict)):
    path = os.path.join(args.out, f"{name}.txt")
    with open(path, "w") as text:
        sg.debugprint(function, file=text)
    print(f"wrote {path}")
