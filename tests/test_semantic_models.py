"""Model-backed analysis with TINY RANDOM models of the real transformers classes (LLaVA, Llama,
Grounding DINO, SAM), saved to a temp folder and loaded back through ``load_hf`` (the code path real
weights use, configured via SEMCODEC_* env vars); the SEDIC VLM answer comes from a real HTTP server.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from extras import needs
from semcodec.cli import main as cli_main
from semcodec.errors import MissingComponentError
from semcodec.semantic.captioners import ChatCaptioner, itc_style, make_captioner
from semcodec.semantic.chat import HFTextChat, HFVisionChat
from semcodec.semantic.config import SemanticConfig
from semcodec.semantic.objects import SedicLimits, analyze_sedic, parse_object_answer, remove_names
from semcodec.semantic.objects.grounding import GroundingDinoDetector
from semcodec.semantic.objects.sam import SamSegmenter
from semcodec.semantic.srr import semantic_residual
from semcodec.text.base import encode_text_stream
from test_semantic_captioners import ChatServer

WORDS = ["<unk>", "<pad>", "<s>", "</s>", "<image>", "USER", ":", "ASSISTANT", "describe", "this", "image", "a",
         "cat", "on", "mat", "red", "blue", "sky", ".", ",", "the", "dog", "tree", "in", "words", "of", "at", "most"]
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'].upper() }}: {% if m['content'] is string %}{{ m['content'] }}"
                 "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}"
                 "{% endif %}{% endfor %}{% endif %} {% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}")


def _word_tokenizer(image_token: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tk.decoder = decoders.WordPiece(prefix="##")
    extra = {"extra_special_tokens": {"image_token": "<image>"}} if image_token else {}
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", **extra)


def _llama_config():
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                       bos_token_id=2, eos_token_id=3, pad_token_id=1)


def build_llava(path: str) -> None:
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    proc = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                             crop_size={"height": 32, "width": 32}),
                          tokenizer=_word_tokenizer(), patch_size=8, vision_feature_select_strategy="default",
                          chat_template=CHAT_TEMPLATE, num_additional_image_tokens=1)
    cfg = LlavaConfig(vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                     num_attention_heads=2, image_size=32, patch_size=8),
                      text_config=_llama_config(), image_token_index=4, vision_feature_layer=-1,
                      vision_feature_select_strategy="default")
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = 1
    model.generation_config.suppress_tokens = [0, 1, 2, 3, 4]  # random weights: keep the output non-empty
    model.save_pretrained(path)
    proc.save_pretrained(path)


def build_llava_next(path: str) -> None:
    from transformers import (
        CLIPVisionConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    grid = [[32, 32], [32, 64], [64, 32]]
    proc = LlavaNextProcessor(image_processor=LlavaNextImageProcessor(size={"shortest_edge": 32},
                                                                      crop_size={"height": 32, "width": 32},
                                                                      image_grid_pinpoints=grid),
                              tokenizer=_word_tokenizer(), patch_size=8, vision_feature_select_strategy="default",
                              chat_template=CHAT_TEMPLATE, num_additional_image_tokens=1)
    cfg = LlavaNextConfig(vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                         num_attention_heads=2, image_size=32, patch_size=8),
                          text_config=_llama_config(), image_token_index=4, image_grid_pinpoints=grid,
                          vision_feature_layer=-1, vision_feature_select_strategy="default")
    torch.manual_seed(5)
    model = LlavaNextForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = 1
    model.generation_config.suppress_tokens = [0, 1, 2, 3, 4]
    model.save_pretrained(path)
    proc.save_pretrained(path)


def build_blip2(path: str) -> None:
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        Blip2QFormerConfig,
        Blip2VisionConfig,
        BlipImageProcessor,
        OPTConfig,
    )

    proc = Blip2Processor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                          tokenizer=_word_tokenizer(image_token=False), num_query_tokens=4)
    cfg = Blip2Config(
        vision_config=Blip2VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=8),
        qformer_config=Blip2QFormerConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=32, encoder_hidden_size=16),
        text_config=OPTConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, ffn_dim=32,
                              num_attention_heads=2, word_embed_proj_dim=16, max_position_embeddings=128,
                              bos_token_id=2, eos_token_id=3, pad_token_id=1),
        num_query_tokens=4, image_token_index=4)
    torch.manual_seed(4)
    model = Blip2ForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = 1
    model.generation_config.suppress_tokens = [0, 1, 2, 3, 4]
    model.save_pretrained(path)
    proc.save_pretrained(path)


def build_llama(path: str) -> None:
    from transformers import LlamaForCausalLM

    tok = _word_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(1)
    model = LlamaForCausalLM(_llama_config())
    model.generation_config.pad_token_id = 1
    model.generation_config.suppress_tokens = [0, 1, 2, 3, 4]  # random weights: keep the output non-empty
    model.save_pretrained(path)
    tok.save_pretrained(path)


def build_grounding_dino(path: str) -> None:
    from transformers import (
        BertConfig,
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "cat", "dog", "a", "tree", "red", "car", "sky"]
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")  # a tiny BERT WordPiece vocabulary for the text side
    proc = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64,
                                                                                  "longest_edge": 96}),
                                  tokenizer=BertTokenizerFast(vocab_file=os.path.join(path, "vocab.txt")))
    cfg = GroundingDinoConfig(
        backbone_config=SwinConfig(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=2,
                                   image_size=64, patch_size=4, out_features=["stage2", "stage3", "stage4"]),
        text_config=BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=64),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=10, num_feature_levels=4, encoder_n_points=2,
        decoder_n_points=2, max_text_len=32, use_timm_backbone=False, use_pretrained_backbone=False,
        fusion_ffn_dim=32)
    torch.manual_seed(2)
    GroundingDinoForObjectDetection(cfg).save_pretrained(path)
    proc.save_pretrained(path)


def build_sam(path: str) -> None:
    from transformers import (
        SamConfig,
        SamImageProcessor,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    cfg = SamConfig(
        vision_config=SamVisionConfig(hidden_size=16, output_channels=8, num_hidden_layers=1, num_attention_heads=2,
                                      image_size=64, patch_size=8, mlp_dim=32, global_attn_indexes=[0],
                                      window_size=0, num_pos_feats=4),
        prompt_encoder_config=SamPromptEncoderConfig(hidden_size=8, image_size=64, patch_size=8,
                                                     mask_input_channels=4),
        mask_decoder_config=SamMaskDecoderConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                                 mlp_dim=16, iou_head_hidden_dim=8))
    torch.manual_seed(3)
    SamModel(cfg).save_pretrained(path)
    SamProcessor(image_processor=SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
                                                   mask_size={"longest_edge": 16},
                                                   mask_pad_size={"height": 16, "width": 16})).save_pretrained(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny_semantic")
    paths = {k: str(root / k) for k in ("vlm", "llava_next", "blip2", "llm", "gdino", "sam")}
    build_llava(paths["vlm"])
    build_llava_next(paths["llava_next"])
    build_blip2(paths["blip2"])
    build_llama(paths["llm"])
    build_grounding_dino(paths["gdino"])
    build_sam(paths["sam"])
    return paths


@pytest.fixture
def image() -> np.ndarray:
    return (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)


def test_hf_vlm_captioner_greedy_and_limited(tiny, image):
    vlm = SemanticConfig(vlm=tiny["vlm"], max_new_tokens=60).vision_chat()
    assert isinstance(vlm, HFVisionChat)
    assert vlm.build_prompt("describe this image", 1) == "USER: <image>\ndescribe this image ASSISTANT:"
    cap = ChatCaptioner(vlm, itc_style())
    a, b = cap.caption(image), cap.caption(image)
    assert a == b and a  # greedy: deterministic, non-empty
    assert len(a.split()) <= 50
    assert set(a.replace(".", " . ").split()) <= set(WORDS)  # decoded with the checkpoint's own tokenizer
    assert len(ChatCaptioner(vlm, itc_style()).caption(image, prompt="describe a cat").split()) <= 50
    # same path through make_captioner + env configuration
    os.environ["SEMCODEC_VLM"] = tiny["vlm"]
    try:
        via_env = make_captioner("itc")
    finally:
        del os.environ["SEMCODEC_VLM"]
    assert isinstance(via_env, ChatCaptioner) and via_env.chat.model.config.model_type == "llava"


@pytest.mark.parametrize("kind,cls,prompt", [
    ("blip2", "Blip2ForConditionalGeneration", "Question: describe this image Answer:"),
    ("llava_next", "LlavaNextForConditionalGeneration", "USER: <image>\ndescribe this image ASSISTANT:"),
])
def test_other_vlm_classes_caption(tiny, image, kind, cls, prompt):
    vlm = SemanticConfig(vlm=tiny[kind], max_new_tokens=10).vision_chat()
    assert type(vlm.model).__name__ == cls  # picked by AutoModelForImageTextToText from the checkpoint
    assert vlm.build_prompt("describe this image", 1) == prompt
    cap = ChatCaptioner(vlm, itc_style())
    a = cap.caption(image)
    assert a and a == cap.caption(image) and len(a.split()) <= 10


def test_hf_text_llm_runs_srr(tiny, image):
    llm = SemanticConfig(llm=tiny["llm"], max_new_tokens=8).text_chat()
    assert isinstance(llm, HFTextChat)
    out1 = llm.ask("describe the cat")
    assert out1 == llm.ask("describe the cat")
    vlm = SemanticConfig(vlm=tiny["vlm"], max_new_tokens=12).vision_chat()
    cap = ChatCaptioner(vlm, itc_style())
    other = np.ascontiguousarray(image[::-1])
    res = semantic_residual(image, other, cap, llm, max_words=5, caption_original="a red cat on a blue mat")
    assert res.caption_original == "a red cat on a blue mat"
    assert len(res.residual.split()) <= 5


def test_grounding_dino_and_sam(tiny, image):
    det = GroundingDinoDetector.load(tiny["gdino"], box_threshold=0.0, text_threshold=0.0)
    d = det.detect(image, "cat")
    assert d is not None and 0 <= d.box[0] < d.box[2] <= 64 and 0 <= d.box[1] < d.box[3] <= 48
    assert d == det.detect(image, "cat")
    det.box_threshold = 1.01  # nothing can pass: the object counts as hallucinated
    assert det.detect(image, "cat") is None
    seg = SamSegmenter.load(tiny["sam"])
    m = seg.segment(image, (8.0, 6.0, 40.0, 30.0))
    assert m.shape == (48, 64) and m.dtype == bool


def test_every_box_goes_to_sam_and_the_masks_merge(tiny, image):
    """A name Grounding DINO finds several times gets ONE mask: the union of SAM's mask for every box."""
    from semcodec.semantic.objects import ObjectDescription, ObjectSemantics, ground_objects

    det = GroundingDinoDetector.load(tiny["gdino"], box_threshold=0.0, text_threshold=0.0)
    found = det.detect_all(image, "cat")
    assert len(found) >= 2 and [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    assert det.detect(image, "cat") == found[0]
    boxes = [(2.0, 2.0, 20.0, 16.0), (40.0, 28.0, 62.0, 46.0)]  # two instances far apart

    class TwoInstances:  # the real detector's interface, with two known boxes for "cat" and none for "dog"
        def detect_all(self, _image, name):
            return [type(found[0])(b, 0.9 - 0.1 * i) for i, b in enumerate(boxes)] if name == "cat" else []

    seg = SamSegmenter.load(tiny["sam"])
    separate = [seg.segment(image, b) for b in boxes]
    union = seg.segment_boxes(image, boxes)
    assert np.array_equal(union, separate[0] | separate[1])
    assert union.sum() > max(m.sum() for m in separate)  # both instances count (random SAM: disjoint masks here)
    sem = ObjectSemantics("a cat and a dog on a mat", [ObjectDescription("cat", "grey"), ObjectDescription("dog", "")])
    res = ground_objects(image, sem, TwoInstances(), seg)
    assert res.dropped == ["dog"]
    assert res.overall == "a cat on a mat"  # the hallucinated name leaves the overall description too
    assert [o.name for o in res.objects] == ["cat"] and np.array_equal(res.objects[0].mask, union)
    assert res.objects[0].box == boxes[0]
    # the same objects through the real detector: all its boxes are merged the same way
    real = ground_objects(image, ObjectSemantics("a cat", [ObjectDescription("cat", "")]), det, seg)
    want = seg.segment_boxes(image, [d.box for d in found])
    assert [o.name for o in real.objects] == (["cat"] if want.any() else [])
    if want.any():
        assert np.array_equal(real.objects[0].mask, want)


@pytest.mark.parametrize("text,names,want", [
    ("a cat and a dog on a mat", ["dog"], "a cat on a mat"),
    ("A dog and a cat on a mat", ["dog"], "a cat on a mat"),
    ("two dogs, a cat and a ball", ["dogs"], "a cat and a ball"),
    ("a bird with a red car", ["bird"], "a red car"),
    ("The red car parked near a tree with a bird.", ["bird", "tree"], "The red car parked near."),
    ("a category of cats", ["cat"], "a category of"),
    ("a cat on a mat", ["red car", ""], "a cat on a mat"),
])
def test_hallucinated_names_leave_the_overall_description(text, names, want):
    from semcodec.semantic.objects import remove_names

    assert remove_names(text, names) == want


@needs("diffusers")
def test_sedic_analysis_end_to_end_and_cli(tiny, image, tmp_path, capsys, monkeypatch):
    answer = "Object 1: cat | grey fur, sitting\nObject 2: dog | brown, lying down\nOverall: a cat and a dog on a mat"
    srv = ChatServer(lambda body: answer)
    try:
        cfg = SemanticConfig(chat_url=srv.url, chat_model="vlm", grounding_dino=tiny["gdino"], sam=tiny["sam"])
        det = cfg.grounder()
        det.box_threshold = det.text_threshold = 0.0
        seg = cfg.segmenter()
        res = analyze_sedic(image, cfg.vision_chat(), det, seg, SedicLimits(3, 12, 30))
        assert res.overall == remove_names("a cat and a dog on a mat", res.dropped)
        assert sorted([o.name for o in res.objects] + res.dropped) == ["cat", "dog"]
        assert [o.text for o in res.objects][:1] in ([], ["cat, grey fur, sitting"])
        for o in res.objects:
            assert o.mask.shape == (48, 64) and o.mask.any()
        det.box_threshold = 1.01
        dropped = analyze_sedic(image, cfg.vision_chat(), det, seg)
        assert dropped.objects == [] and dropped.dropped == ["cat", "dog"]
        # CLI with env configuration
        path = tmp_path / "img.png"
        from PIL import Image

        Image.fromarray(image).save(path)
        monkeypatch.setenv("SEMCODEC_CHAT_URL", srv.url)
        monkeypatch.setenv("SEMCODEC_CHAT_MODEL", "vlm")
        monkeypatch.setenv("SEMCODEC_GROUNDING_DINO", tiny["gdino"])
        monkeypatch.setenv("SEMCODEC_SAM", tiny["sam"])
        from semcodec.generative.components.tiny import build_tiny_sd

        # sedic and itc need diffusion weights named to run at all (their files are decoded with them)
        monkeypatch.setenv("SEMCODEC_SD_MODEL", str(build_tiny_sd(tmp_path / "sd", controlnet=False)))
        # `semcodec analyze` runs the sedic encoder: ONE text stream (overall + one line per object), one
        # mask stream when objects were confirmed, then the base image
        assert cli_main(["analyze", str(path), "--profile", "sedic", "--set", "base_profile=jpeg", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        kinds = [s["kind"] for s in out["streams"]]
        assert kinds[:2] == ["params", "text"] and kinds.count("text") == 1 and kinds[-1] == "image"
        text = out["streams"][1]["text"].split("\n")
        kept = [line.split(":")[0] for line in text[1:]]
        assert text[0] == remove_names("a cat and a dog on a mat", [n for n in ("cat", "dog") if n not in kept])
        assert (kinds.count("mask") == 1) == (len(text) > 1)
        assert out["streams"][1]["payload_bytes"] == len(encode_text_stream("\n".join(text)))
        assert out["total_bits"] == 8 * out["total_bytes"] == 8 * (out["header_bytes"] + sum(
            s["bytes"] for s in out["streams"]))
        assert cli_main(["analyze", str(path), "--profile", "itc", "--set", "base_profile=jpeg", "--caption",
                         "a cat"]) == 0
        assert "'a cat'" in capsys.readouterr().out
        monkeypatch.delenv("SEMCODEC_SAM")  # object analysis off: the overall description alone is sent
        assert cli_main(["analyze", str(path), "--profile", "sedic", "--set", "base_profile=jpeg", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert [s["kind"] for s in out["streams"]] == ["params", "text", "image"]
    finally:
        srv.close()


@pytest.mark.parametrize("answer,names,overall", [
    ("Object 1: cat | grey fur\nObject 2: dog | brown\nOverall: a cat and a dog", ["cat", "dog"], "a cat and a dog"),
    ('Sure! {"objects": [{"name": "A red car", "details": "shiny"}], "overall": "a street"}', ["red car"], "a street"),
    ("1. **Cat**: grey, sleeping\n2. **Tree** - tall oak\n3. Cat: again\n4. sky: blue\n5. sun: bright\n"
     "Scene: a garden", ["cat", "tree", "sky"], "a garden"),
    ("- the dog (brown, running)\nA dog runs in a park.", ["dog"], "A dog runs in a park."),
])
def test_parse_object_answers(answer, names, overall):
    sem = parse_object_answer(answer, SedicLimits(3, 3, 30))
    assert [o.name for o in sem.objects] == names
    assert sem.overall == overall
    assert all(len(o.details.split()) <= 3 for o in sem.objects)


def test_vlm_and_llm_load_in_the_configured_dtype(tiny, image, monkeypatch):
    """SEMCODEC_DTYPE=bf16 halves a 7B VLM's memory; the image inputs follow the model's dtype."""
    monkeypatch.setenv("SEMCODEC_DTYPE", "bf16")
    cfg = SemanticConfig.from_env(vlm=tiny["vlm"], llm=tiny["llm"], max_new_tokens=6)
    assert cfg.dtype == "bf16" and cfg.device_map is None
    vlm = cfg.vision_chat()
    assert vlm.model.dtype == torch.bfloat16 and vlm.device == "cpu"
    assert ChatCaptioner(vlm, itc_style()).caption(image)  # pixel values cast to bf16, ids unchanged
    llm = cfg.text_chat()
    assert next(llm.model.parameters()).dtype == torch.bfloat16 and llm.ask("describe the cat") is not None
    with pytest.raises(MissingComponentError, match="unknown dtype"):
        SemanticConfig(vlm=tiny["vlm"], dtype="fp8").vision_chat()
