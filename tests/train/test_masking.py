"""Exactly the assistant tokens carry loss, also with observations between replies."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from ipr_train.masking import IGNORE, TemplateError, encode


def test_only_assistant_tokens_are_labelled(tiny_dir, train_conversations):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    for conversation in train_conversations[:10]:
        encoded = encode(tokenizer, conversation)
        trained = tokenizer.decode([t for t in encoded.labels if t != IGNORE])
        replies = "".join(
            m["content"] + "<|end|>" for m in conversation if m["role"] == "assistant"
        )
        assert trained == replies
        # transformers' own mask from the template's {% generation %} markers agrees
        reference = tokenizer.apply_chat_template(
            conversation, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        masks = reference["assistant_masks"]
        end = max(i for i, m in enumerate(masks) if m) + 1  # nothing after the last reply
        assert reference["input_ids"][:end] == encoded.input_ids
        ours = [int(label != IGNORE) for label in encoded.labels]
        assert ours == masks[:end]
        # and no observation text is trained on
        for message in conversation:
            if message["role"] == "user" and message["content"].startswith("Observation:"):
                assert message["content"] not in trained


def test_the_saved_tokenizer_loads_back_unchanged(tiny_dir, train_conversations):
    """transformers 5 can swap a custom pre-tokenizer on load (Qwen2 configs); ours must
    tokenise identically after save/load."""
    from ipr_train.tiny import build_tokenizer

    text = train_conversations[0][2]["content"]
    loaded = AutoTokenizer.from_pretrained(tiny_dir)
    fresh = build_tokenizer(m["content"] for c in train_conversations for m in c)
    assert loaded(text)["input_ids"] == fresh(text)["input_ids"]


def test_truncation_keeps_labels_aligned(tiny_dir, train_conversations):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    full = encode(tokenizer, train_conversations[0])
    cut = encode(tokenizer, train_conversations[0], max_length=100)
    assert cut.input_ids == full.input_ids[:100] and cut.labels == full.labels[:100]


def test_a_template_that_rewrites_history_is_refused(tiny_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    # drops every assistant turn but the last: prefixes are not prefixes
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'assistant' or loop.last %}"
        "<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    conversation = [
        {"role": role, "content": text}
        for role, text in [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")]
    ]
    with pytest.raises(TemplateError):
        encode(tokenizer, conversation)


def test_a_final_observation_is_not_encoded(tiny_dir, train_conversations):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    conversation = train_conversations[0]
    assert conversation[-1]["role"] == "assistant"
    ended = [*conversation, {"role": "user", "content": "Observation:\nThank you for shopping"}]
    assert encode(tokenizer, ended) == encode(tokenizer, conversation)
