#!/usr/bin/env python3
"""The PyTorch peer (charrnn_batched.py) in mixed precision: its model's forward runs under
torch.autocast("cpu", dtype=torch.bfloat16), the usual recipe (the LSTM and the head take
bf16 operands; the logits come back as f32 so the loss is f32; backward runs outside the
autocast region in the dtypes the forward chose; weights and Adam stay f32).

    python3 bench/peer_bf16.py PEER_DIR [the peer's flags...]

The peer script is read-only (../shared/peers/pytorch); this wraps it without a copy: it
loads the script as a module, wraps CharRNN.forward, and runs its main().
"""
import importlib.util
import os
import sys

import torch


def main():
    peer_dir = sys.argv[1]
    sys.argv = [os.path.join(peer_dir, "charrnn_batched.py")] + sys.argv[2:]
    spec = importlib.util.spec_from_file_location("charrnn_batched", sys.argv[0])
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    forward = peer.CharRNN.forward

    def autocast_forward(self, x, hidden=None):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, hidden = forward(self, x, hidden)
        return logits.float(), hidden

    peer.CharRNN.forward = autocast_forward
    print("peer_bf16: CharRNN.forward under torch.autocast('cpu', dtype=torch.bfloat16)")
    peer.main()


if __name__ == "__main__":
    main()
