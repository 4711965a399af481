"""Logistic regression, the Theano tutorial's classic, on scikit-learn's breast-cancer data.

The smallest complete symgraph program: the lines between the two rules are all it takes.
"""

import argparse
import os

import numpy as np

import symgraph as sg

options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
options.add_argument("--epochs", type=int, default=500, help="gradient steps on the training set (default 500)")
options.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default 0)")
options.add_argument(
    "--out", default="out/logistic_regression", help="folder for the graph picture (default out/logistic_regression)"
)
options.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
args = options.parse_args()
sg.config.floatX = "float32" if args.float32 else "float64"
try:
    from sklearn.datasets import load_breast_cancer
except ImportError:
    raise SystemExit("this example needs scikit-learn: pip install -e '.[examples]'") from None
data = load_breast_cancer()
features = ((data.data - data.data.mean(0)) / data.data.std(0)).astype(sg.config.floatX)
test = np.random.default_rng(args.seed).random(len(features)) < 0.2
targets = data.target.astype(sg.config.floatX)
X, Y, X_test, Y_test = features[~test], targets[~test], features[test], targets[test]

# ----------------------------------------------------------------------------------------------
x = sg.matrix("x")
y = sg.vector("y")
w = sg.shared(np.zeros(X.shape[1], sg.config.floatX), name="w")
b = sg.shared(0.0, name="b")
p_1 = 1 / (1 + sg.exp(-(x @ w) - b))  # the probability that the target is 1
prediction = p_1 > 0.5
xent = -y * sg.log(p_1) - (1 - y) * sg.log(1 - p_1)  # cross-entropy
cost = xent.mean() + 0.01 * (w**2).sum()  # with a little weight decay
gw, gb = sg.grad(cost, [w, b])
train = sg.function([x, y], [prediction, xent], updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)])
predict = sg.function([x], prediction)
for _step in range(args.epochs):
    train(X, Y)
# ----------------------------------------------------------------------------------------------

print(f"training accuracy {(predict(X) == Y).mean():.3f}, test accuracy {(predict(X_test) == Y_test).mean():.3f}")
os.makedirs(args.out, exist_ok=True)
try:
    sg.plot(predict, os.path.join(args.out, "predict_graph.svg"))
    print(f"wrote {os.path.abspath(os.path.join(args.out, 'predict_graph.svg'))}")
except ImportError as error:
    print(f"graph picture skipped: {error}")
