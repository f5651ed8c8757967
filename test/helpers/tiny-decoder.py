"""Tiny decoder graphs in the optimum tensor contract, each broken (or not) in one way a real export can be,
for the load-time refusal and `guardctl model check` tests. Built at test time with onnx.helper (Debian's
python3-onnx): run as `/usr/bin/python3 tiny-decoder.py OUT.onnx VARIANT [LAYERS KV_HEADS HEAD_DIM VOCAB]`.

The graph embeds input_ids (Gather), appends them to every layer's past as the new key/value, and projects the
embedding to logits: enough to load, prefill and decode with random weights. Variants:
  fp32          the contract as guardctl wants it (float32 KV and logits)
  int8          the logits projection as DynamicQuantizeLinear + MatMulInteger (the int8/uint8/quantized exports)
  bf16          bfloat16 past/present (ORT's Node binding cannot exchange them)
  int32-ids     input_ids declared int32
  no-past       no past_key_values.1.value input (and no present.1.value)
  custom-op     one node from a custom domain (needs a custom-op library)
  unknown-op    one com.microsoft node that no ONNX Runtime build has
  init-inputs   fp32, with the initializers also listed as graph inputs (files from IR version < 4 do that)
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


def build(variant, layers=2, kv_heads=2, head_dim=8, vocab=4096):
    rng = np.random.default_rng(7)
    hd = kv_heads * head_dim
    kv_type = T.BFLOAT16 if variant == 'bf16' else T.FLOAT
    ids_type = T.INT32 if variant == 'int32-ids' else T.INT64
    inits = [
        nh.from_array((rng.standard_normal((vocab, hd)) * 0.5).astype(np.float32), 'embed'),
        nh.from_array(np.array([0, 0, kv_heads, head_dim], dtype=np.int64), 'split_shape'),
    ]
    nodes = []
    ids = 'input_ids'
    if variant == 'int32-ids':
        nodes.append(h.make_node('Cast', ['input_ids'], ['ids64'], to=T.INT64))
        ids = 'ids64'
    nodes += [
        h.make_node('Gather', ['embed', ids], ['hidden']),  # [b, s, hd]
        h.make_node('Reshape', ['hidden', 'split_shape'], ['heads']),  # [b, s, H, D]
        h.make_node('Transpose', ['heads'], ['new_kv_f32'], perm=[0, 2, 1, 3]),  # [b, H, s, D]
    ]
    new_kv = 'new_kv_f32'
    if kv_type != T.FLOAT:
        nodes.append(h.make_node('Cast', ['new_kv_f32'], ['new_kv'], to=kv_type))
        new_kv = 'new_kv'
    inputs = [
        h.make_tensor_value_info('input_ids', ids_type, ['batch_size', 'sequence_length']),
        h.make_tensor_value_info('attention_mask', T.INT64, ['batch_size', 'total_sequence_length']),
        h.make_tensor_value_info('position_ids', T.INT64, ['batch_size', 'sequence_length']),
    ]
    outputs = [h.make_tensor_value_info('logits', T.FLOAT, ['batch_size', 'sequence_length', vocab])]
    for layer in range(layers):
        for kind in ('key', 'value'):
            if variant == 'no-past' and layer == 1 and kind == 'value':
                continue
            past, present = f'past_key_values.{layer}.{kind}', f'present.{layer}.{kind}'
            inputs.append(h.make_tensor_value_info(past, kv_type, ['batch_size', kv_heads, 'past_sequence_length', head_dim]))
            outputs.append(h.make_tensor_value_info(present, kv_type, ['batch_size', kv_heads, 'total_sequence_length', head_dim]))
            nodes.append(h.make_node('Concat', [past, new_kv], [present], axis=2))
    lm_head = (rng.standard_normal((hd, vocab)) * 0.5).astype(np.float32)
    if variant == 'int8':
        scale = float(np.abs(lm_head).max() / 127)
        inits += [
            nh.from_array(np.clip(np.round(lm_head / scale), -127, 127).astype(np.int8), 'lm_head_q'),
            nh.from_array(np.array(0, dtype=np.int8), 'lm_head_zero'),
            nh.from_array(np.array(scale, dtype=np.float32), 'lm_head_scale'),
        ]
        nodes += [
            h.make_node('DynamicQuantizeLinear', ['hidden'], ['hidden_q', 'hidden_scale', 'hidden_zero']),
            h.make_node('MatMulInteger', ['hidden_q', 'lm_head_q', 'hidden_zero', 'lm_head_zero'], ['logits_i32']),
            h.make_node('Cast', ['logits_i32'], ['logits_raw'], to=T.FLOAT),
            h.make_node('Mul', ['hidden_scale', 'lm_head_scale'], ['logits_scale']),
            h.make_node('Mul', ['logits_raw', 'logits_scale'], ['logits']),
        ]
    else:
        inits.append(nh.from_array(lm_head, 'lm_head'))
        nodes.append(h.make_node('MatMul', ['hidden', 'lm_head'], ['logits']))
    opsets = [h.make_opsetid('', 17)]
    if variant == 'custom-op':
        nodes.append(h.make_node('Scale', ['lm_head'], ['lm_head_scaled'], domain='ai.example.custom'))
        opsets.append(h.make_opsetid('ai.example.custom', 1))
    if variant == 'unknown-op':
        nodes.append(h.make_node('NoSuchOp', ['lm_head'], ['lm_head_unknown'], domain='com.microsoft'))
        opsets.append(h.make_opsetid('com.microsoft', 1))
    if variant == 'init-inputs':
        inputs += [h.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = h.make_graph(nodes, f'tiny-{variant}', inputs, outputs, inits)
    model = h.make_model(graph, opset_imports=opsets, producer_name='guardctl-test')
    model.ir_version = 8
    return model


if __name__ == '__main__':
    out, variant, *dims = sys.argv[1:]
    onnx.save(build(variant, *map(int, dims)), out)
