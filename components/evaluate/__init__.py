"""evaluate: scores a trained model on the test split and decides whether it is blessed (the gate before push)."""
