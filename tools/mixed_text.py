"""Deterministic mixed text for tokenizer tests and benchmarks: code, prose in several scripts and
languages, emoji (with modifiers and joiners), numbers, runs of spaces, tabs and newlines, and
texts that look like special tokens. Same seed and size -> same bytes on every Python 3."""
from __future__ import annotations

import random

PROSE = [
    "The quick brown fox jumps over the lazy dog. It's 3:45pm and we'll be late, won't we?",
    "Don't panic! I've seen worse: they're just tokens, and you'd be surprised how many there are.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Größe, Maß und Übermut.",
    "Portez ce vieux whisky au juge blond qui fume ; l'élève a déjà reçu ça — très bien !",
    "El veloz murciélago hindú comía feliz cardillo y kiwi. ¿Dónde está la estación? ¡Aquí!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Привет, мир!",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Καλημέρα κόσμε!",
    "我能吞下玻璃而不伤身体。今天天气很好，我们去公园散步吧。",
    "いろはにほへと ちりぬるを。日本語のテキストとカタカナ、ひらがな。",
    "다람쥐 헌 쳇바퀴에 타고파. 안녕하세요, 세계!",
    "نص عربي للاختبار: مرحبا بالعالم، كيف حالك؟",
    "नमस्ते दुनिया! यह एक परीक्षण वाक्य है।",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "עברית: שלום עולם, מה שלומך?",
    "Tiếng Việt có dấu: Xin chào thế giới, bạn khỏe không?",
    "Zażółć gęślą jaźń. Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Combining marks: e\u0301 a\u0308 n\u0303 and precomposed é ä ñ; Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319algo.",
    "Ünïcödé spaces:\u00a0no-break,\u2009thin,\u3000ideographic,\u2028line sep.",
]

CODE = [
    "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];  // dot product\n}\n",
    "{\"name\": \"test\", \"values\": [1, 2.5, -3e10, null, true], \"nested\": {\"k\": \"v\"}}\n",
    "SELECT id, name FROM users WHERE age >= 18 AND email LIKE '%@example.com' ORDER BY id DESC;\n",
    "#include <stdio.h>\nint main(void) { printf(\"Hello, %s!\\n\", \"world\"); return 0; }\n",
    "const f = async (x) => { await sleep(100); return x?.y ?? 'default'; };\n",
    "<div class=\"row\"><span id='x'>&lt;tag&gt; &amp; more</span></div>\n",
    "    x = [i**2 for i in range(10) if i % 3 == 0]\n    print(f\"{x=}\")\n",
    "fn main() { let v: Vec<u32> = (0..10).map(|x| x * x).collect(); println!(\"{:?}\", v); }\n",
]

EMOJI = ["\U0001f600", "\U0001f999", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
         "\U0001f1ef\U0001f1f5", "\u2764\ufe0f", "\U0001f525", "\U0001f680", "\u2705", "\U0001f9d1\u200d\U0001f4bb"]

LOOKALIKES = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "</s>", "<s>", "<|im_", "|im_end|>", "< |im_end| >",
              "<<|im_start|>>", "<|eot_id|>", "[INST]", "<unk>", "<0x0A>", "<|end|>", "<|user|>"]

SPACING = [" ", "  ", "   ", "    ", "        ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", " \n", "\r\n", " \t \n  "]


def number(rng: random.Random) -> str:
    k = rng.randrange(5)
    if k == 0:
        return str(rng.randrange(10 ** rng.randrange(1, 12)))
    if k == 1:
        return f"{rng.uniform(-1e6, 1e6):.{rng.randrange(0, 6)}f}"
    if k == 2:
        return f"{rng.randrange(1900, 2100)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    if k == 3:
        return "".join(rng.choice("٠١٢٣٤٥٦٧٨٩०१२३४५६७८९一二三½²") for _ in range(rng.randrange(1, 6)))
    return hex(rng.randrange(1 << 32))


def mixed_text(n_bytes: int, seed: int = 0) -> str:
    """About n_bytes of UTF-8 (never less), built from the pools above."""
    rng = random.Random(seed)
    parts = []
    size = 0
    while size < n_bytes:
        k = rng.random()
        if k < 0.40:
            s = rng.choice(PROSE)
        elif k < 0.62:
            s = rng.choice(CODE)
        elif k < 0.72:
            s = number(rng)
        elif k < 0.80:
            s = "".join(rng.choice(EMOJI) for _ in range(rng.randrange(1, 4)))
        elif k < 0.85:
            s = rng.choice(LOOKALIKES)
        else:
            s = rng.choice(SPACING)
        parts.append(s)
        parts.append(rng.choice([" ", " ", " ", "", "\n", "  "]))
        size += len(s.encode("utf-8")) + 1
    return "".join(parts)
