"""evaluate: scores a trained model on the eval split and decides whether it is blessed (the gate before push)."""
