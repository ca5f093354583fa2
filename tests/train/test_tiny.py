"""The quickstart's word-level tokenizer gives WebShop pages back exactly."""

from __future__ import annotations

from ipr_train.tiny import build_word_tokenizer


def _texts(conversations):
    return [m["content"] for c in conversations for m in c]


def test_decoding_gives_every_page_back_exactly(train_conversations):
    tokenizer = build_word_tokenizer(_texts(train_conversations[:20]))
    for text in _texts(train_conversations[:20]):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
