"""Raw ScanNet-style labels: what an annotator would have written for each catalogue object, and
the label table (ScanNet's `scannetv2-labels.combined.tsv` format) that says what they mean.

ScanNet's labels are free text: one kind of thing goes by several raw labels (`couch` and `sofa`,
`trash can`, `trashcan` and `recycling bin`), and ScanNet's table maps each to a cleaned `category`
and an NYU40 class. Each instance here gets one variant, drawn with weights that roughly follow how
often ScanNet uses each, from a stream of its own (`raw_label`) so the geometry does not change
with the labels. `label_table_rows` lists every label the generator can write, with the `category`
and NYU40 columns ScanNet's table gives them; ids are this table's own and `count` is left empty
(ours are not ScanNet's annotation counts).
"""

from __future__ import annotations

import numpy as np

from data_gen.seeding import stable_rng

# catalogue label -> (raw label, relative weight) variants.
RAW_LABELS: dict[str, tuple[tuple[str, float], ...]] = {
    "chair": (("chair", 16), ("office chair", 2), ("armchair", 1)),
    "table": (("table", 8), ("coffee table", 2), ("dining table", 1)),
    "sofa": (("couch", 1), ("sofa", 1)),
    "bed": (("bed", 1),),
    "mattress": (("mattress", 1),),
    "cabinet": (("cabinet", 7), ("kitchen cabinet", 3), ("kitchen cabinets", 3), ("cabinets", 1)),
    "closet": (("closet", 3), ("wardrobe", 1)),
    "desk": (("desk", 1),),
    "bookshelf": (("bookshelf", 5), ("bookshelves", 1)),
    "tv": (("tv", 6), ("television", 1)),
    "lamp": (("lamp", 1),),
    "fan": (("fan", 1),),
    "plant": (("plant", 4), ("potted plant", 1)),
    "backpack": (("backpack", 1),),
    "guitar": (("guitar", 1),),
    "piano": (("piano", 1),),
    "radiator": (("radiator", 1),),
    "toilet": (("toilet", 1),),
    "sink": (("sink", 1),),
    "refrigerator": (("refrigerator", 6), ("fridge", 1)),
    "nightstand": (("nightstand", 1),),
    "dresser": (("dresser", 1),),
    "ottoman": (("ottoman", 1),),
    "trash bin": (("trash can", 20), ("recycling bin", 4), ("trashcan", 1), ("trash bin", 1)),
    "bathtub": (("bathtub", 1),),
    "counter": (("counter", 6), ("kitchen counter", 1)),
    "oven": (("oven", 1),),
    "stool": (("stool", 1),),
    "washing machine": (("washing machine", 1),),
    "door": (("door", 20), ("doors", 1)),
    "window": (("window", 20), ("windows", 1)),
    "clock": (("clock", 1),),
    "mirror": (("mirror", 1),),
    "towel": (("towel", 1),),
    "monitor": (("monitor", 1),),
    "keyboard": (("keyboard", 1),),
    "computer mouse": (("mouse", 1),),
    "telephone": (("telephone", 3), ("phone", 1)),
    "printer": (("printer", 1),),
    "microwave": (("microwave", 1),),
    "pillow": (("pillow", 1),),
}
WALL, SHOWER_WALL, FLOOR, CEILING = "wall", "shower walls", "floor", "ceiling"  # the room's instances

# raw label -> (category, nyuClass, nyu40class, mpcat40), as ScanNet's table has them.
TABLE: dict[str, tuple[str, str, str, str]] = {
    "wall": ("wall", "wall", "wall", "wall"),
    "shower walls": ("shower wall", "wall", "wall", "wall"),
    "floor": ("floor", "floor", "floor", "floor"),
    "ceiling": ("ceiling", "ceiling", "ceiling", "ceiling"),
    "chair": ("chair", "chair", "chair", "chair"),
    "office chair": ("office chair", "chair", "chair", "chair"),
    "armchair": ("armchair", "chair", "chair", "chair"),
    "table": ("table", "table", "table", "table"),
    "coffee table": ("coffee table", "coffee table", "table", "table"),
    "dining table": ("dining table", "table", "table", "table"),
    "couch": ("couch", "sofa", "sofa", "sofa"),
    "sofa": ("sofa", "sofa", "sofa", "sofa"),
    "bed": ("bed", "bed", "bed", "bed"),
    "mattress": ("mattress", "mattress", "bed", "bed"),
    "cabinet": ("cabinet", "cabinet", "cabinet", "cabinet"),
    "kitchen cabinet": ("kitchen cabinet", "cabinet", "cabinet", "cabinet"),
    "kitchen cabinets": ("kitchen cabinet", "cabinet", "cabinet", "cabinet"),
    "cabinets": ("cabinet", "cabinet", "cabinet", "cabinet"),
    "closet": ("closet", "wardrobe", "otherfurniture", "furniture"),
    "wardrobe": ("wardrobe", "wardrobe", "otherfurniture", "furniture"),
    "desk": ("desk", "desk", "desk", "table"),
    "bookshelf": ("bookshelf", "bookshelf", "bookshelf", "shelving"),
    "bookshelves": ("bookshelf", "bookshelf", "bookshelf", "shelving"),
    "tv": ("tv", "television", "television", "tv_monitor"),
    "television": ("tv", "television", "television", "tv_monitor"),
    "lamp": ("lamp", "lamp", "lamp", "lighting"),
    "fan": ("fan", "fan", "otherprop", "misc"),
    "plant": ("plant", "plant", "otherprop", "plant"),
    "potted plant": ("potted plant", "plant", "otherprop", "plant"),
    "backpack": ("backpack", "backpack", "bag", "objects"),
    "guitar": ("guitar", "guitar", "otherprop", "objects"),
    "piano": ("piano", "piano", "otherfurniture", "furniture"),
    "radiator": ("radiator", "radiator", "otherfurniture", "misc"),
    "toilet": ("toilet", "toilet", "toilet", "toilet"),
    "sink": ("sink", "sink", "sink", "sink"),
    "refrigerator": ("refrigerator", "refridgerator", "refridgerator", "appliances"),
    "fridge": ("refrigerator", "refridgerator", "refridgerator", "appliances"),
    "nightstand": ("nightstand", "night stand", "night stand", "chest_of_drawers"),
    "dresser": ("dresser", "dresser", "dresser", "chest_of_drawers"),
    "ottoman": ("ottoman", "ottoman", "otherfurniture", "stool"),
    "trash can": ("trash can", "garbage bin", "otherfurniture", "objects"),
    "trashcan": ("trash can", "garbage bin", "otherfurniture", "objects"),
    "trash bin": ("trash bin", "garbage bin", "otherfurniture", "objects"),
    "recycling bin": ("recycling bin", "garbage bin", "otherfurniture", "objects"),
    "bathtub": ("bathtub", "bathtub", "bathtub", "bathtub"),
    "counter": ("counter", "counter", "counter", "counter"),
    "kitchen counter": ("kitchen counter", "counter", "counter", "counter"),
    "oven": ("oven", "oven", "otherprop", "appliances"),
    "stool": ("stool", "stool", "otherprop", "stool"),
    "washing machine": ("washing machine", "washing machine", "otherfurniture", "appliances"),
    "door": ("door", "door", "door", "door"),
    "doors": ("door", "door", "door", "door"),
    "window": ("window", "window", "window", "window"),
    "windows": ("window", "window", "window", "window"),
    "clock": ("clock", "clock", "otherprop", "objects"),
    "mirror": ("mirror", "mirror", "mirror", "mirror"),
    "towel": ("towel", "towel", "towel", "towel"),
    "monitor": ("monitor", "monitor", "otherprop", "objects"),
    "keyboard": ("keyboard", "keyboard", "otherprop", "objects"),
    "mouse": ("mouse", "mouse", "otherprop", "objects"),
    "telephone": ("telephone", "telephone", "otherprop", "objects"),
    "phone": ("telephone", "telephone", "otherprop", "objects"),
    "printer": ("printer", "printer", "otherprop", "appliances"),
    "microwave": ("microwave", "microwave", "otherprop", "appliances"),
    "pillow": ("pillow", "pillow", "pillow", "cushion"),
}

NYU40 = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat", "clothes",
    "ceiling", "books", "refridgerator", "television", "paper", "towel", "shower curtain", "box", "whiteboard",
    "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure", "otherfurniture",
    "otherprop",
)  # fmt: skip  (nyu40id = index + 1)
EIGEN13 = ("bed", "books", "ceiling", "chair", "floor", "furniture", "objects", "picture", "sofa", "table",
           "tv", "wall", "window")  # (eigen13id = index + 1)
_EIGEN13_OF = {
    "wall": "wall", "floor": "floor", "ceiling": "ceiling", "door": "wall", "window": "window", "blinds": "window",
    "curtain": "window", "bed": "bed", "chair": "chair", "sofa": "sofa", "table": "table", "desk": "table",
    "television": "tv", "picture": "picture", "books": "books", "floor mat": "floor", "cabinet": "furniture",
    "bookshelf": "furniture", "counter": "furniture", "shelves": "furniture", "dresser": "furniture",
    "refridgerator": "furniture", "night stand": "furniture", "otherfurniture": "furniture",
}  # fmt: skip  (every other NYU40 class is eigen13 "objects")
MPCAT40 = (
    "wall", "floor", "chair", "door", "table", "picture", "cabinet", "cushion", "window", "sofa", "bed", "curtain",
    "chest_of_drawers", "plant", "sink", "stairs", "ceiling", "toilet", "stool", "towel", "mirror", "tv_monitor",
    "shower", "column", "bathtub", "counter", "fireplace", "lighting", "beam", "railing", "shelving", "blinds",
    "gym_equipment", "seating", "board_panel", "furniture", "appliances", "clothes", "objects", "misc",
)  # fmt: skip  (mpcat40index = index + 1)


def raw_label(label: str, seed: int, object_id: int) -> str:
    """The raw label of object `object_id` (catalogue `label`) in the scene of `seed`: its own
    stream, so drawing it leaves the scene's geometry untouched."""
    names, weights = zip(*RAW_LABELS[label], strict=True)
    p = np.array(weights, dtype=np.float64)
    return names[int(stable_rng("synthetic-raw-label", seed, object_id).choice(len(names), p=p / p.sum()))]


def label_table_rows() -> list[dict[str, str | int]]:
    """One row per raw label the generator writes, in ScanNet's label-table columns."""
    rows: list[dict[str, str | int]] = []
    for i, (raw, (category, nyu_class, nyu40, mpcat)) in enumerate(TABLE.items(), start=1):
        eigen = _EIGEN13_OF.get(nyu40, "objects")
        rows.append({
            "id": i, "raw_category": raw, "category": category, "nyu40id": NYU40.index(nyu40) + 1,
            "eigen13id": EIGEN13.index(eigen) + 1, "nyuClass": nyu_class, "nyu40class": nyu40,
            "eigen13class": eigen.capitalize() if eigen != "tv" else "TV",
            "mpcat40": mpcat, "mpcat40index": MPCAT40.index(mpcat) + 1,
        })  # fmt: skip
    return rows


# VSI-Bench's ScanNet vocabulary (the categories its questions name; `data_gen.qa.labels` holds the
# same list, and a test keeps the two equal) and the catalogue labels the project's label map folds
# into one of them.
QUESTION_VOCABULARY = frozenset({
    "backpack", "bed", "bookshelf", "chair", "clock", "closet", "computer mouse", "counter", "door", "fan",
    "guitar", "keyboard", "lamp", "mattress", "microwave", "mirror", "monitor", "nightstand", "oven", "piano",
    "pillow", "plant", "printer", "radiator", "refrigerator", "sofa", "table", "telephone", "towel",
    "trash bin", "tv", "washing machine", "window",
})  # fmt: skip
_FOLDED = {"desk": "table"}


def question_category(label: str) -> str | None:
    """The category questions name a catalogue object by (None: not asked about, e.g. a cabinet)."""
    label = _FOLDED.get(label, label)
    return label if label in QUESTION_VOCABULARY else None
