"""What the simulated alliance is made of: places, trades and brands, the words its
names are made from, and money as text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Place:
    division: str  # GB/T 2260
    city: str
    district: str


@dataclass(frozen=True, slots=True)
class Trade:
    name: str
    sku: str
    categories: tuple[str, ...]
    price_fen: tuple[int, int]  # unit price range


PLACES: dict[str, tuple[Place, ...]] = {
    "31": tuple(
        Place(code, "上海", name)
        for code, name in (
            ("310101", "黄浦"), ("310104", "徐汇"), ("310105", "长宁"), ("310106", "静安"),
            ("310107", "普陀"), ("310110", "杨浦"), ("310112", "闵行"), ("310115", "浦东"),
            ("310118", "青浦"),
        )
    ),
    "32": (
        Place("320102", "南京", "玄武"), Place("320105", "南京", "建邺"),
        Place("320211", "无锡", "滨湖"), Place("320402", "常州", "天宁"),
        Place("320505", "苏州", "虎丘"), Place("320506", "苏州", "吴中"),
        Place("320508", "苏州", "姑苏"), Place("320509", "苏州", "吴江"),
    ),
    "33": (
        Place("330102", "杭州", "上城"), Place("330106", "杭州", "西湖"),
        Place("330108", "杭州", "滨江"), Place("330203", "宁波", "海曙"),
        Place("330302", "温州", "鹿城"), Place("330402", "嘉兴", "南湖"),
        Place("330421", "嘉兴", "嘉善"),
    ),
    "34": (
        Place("340102", "合肥", "瑶海"), Place("340103", "合肥", "庐阳"),
        Place("340104", "合肥", "蜀山"), Place("340202", "芜湖", "镜湖"),
        Place("340302", "蚌埠", "龙子湖"), Place("341002", "黄山", "屯溪"),
    ),
    # Places of regions a configuration may add (docs/hunan.json): the catalogue knows
    # places; which regions the alliance has comes from the configuration alone.
    "43": (
        Place("430102", "长沙", "芙蓉"), Place("430103", "长沙", "天心"),
        Place("430104", "长沙", "岳麓"), Place("430105", "长沙", "开福"),
        Place("430111", "长沙", "雨花"), Place("430202", "株洲", "荷塘"),
        Place("430302", "湘潭", "雨湖"),
    ),
}  # fmt: skip
REGION_SHORT = {"31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "43": "湖南"}
# Independents per region, relatively; a configured region missing here weighs this much.
REGION_WEIGHTS = {"31": 30, "32": 30, "33": 25, "34": 15, "43": 20}
DEFAULT_REGION_WEIGHT = 15
TRADES: dict[str, Trade] = {
    trade.name: trade
    for trade in (
        Trade("服饰", "AP", ("apparel", "accessories"), (5_900, 89_900)),
        Trade("鞋业", "FW", ("footwear",), (12_900, 159_900)),
        Trade("电器", "HA", ("household_appliances",), (29_900, 899_900)),
        Trade("数码", "EL", ("electronics", "digital_accessories"), (3_900, 699_900)),
        Trade("母婴", "BB", ("baby_products", "toys"), (2_900, 59_900)),
        Trade("美妆", "CO", ("cosmetics",), (5_900, 129_900)),
        Trade("家居", "HM", ("home_furnishing", "kitchenware"), (1_900, 399_900)),
        Trade("体育用品", "SP", ("sports_goods", "apparel"), (4_900, 199_900)),
        Trade("百货", "DS", ("daily_necessities", "luggage", "kitchenware"), (990, 129_900)),
        Trade("文具", "BK", ("books", "stationery"), (990, 19_900)),
    )
}
# Brands whose franchisees (加盟店: each its own legal entity and USCC) take back each
# other's sales: the real source of debts between members.
BRANDS = (
    ("禾木服饰", "服饰"), ("星河数码", "数码"), ("青柠母婴", "母婴"), ("步云鞋业", "鞋业"),
    ("家悦电器", "电器"), ("素言美妆", "美妆"), ("栖居家居", "家居"), ("悦动体育", "体育用品"),
)  # fmt: skip
WORDS = (
    "恒润", "瑞丰", "嘉禾", "德胜", "万顺", "永新", "同裕", "和美", "佳乐", "益民", "锦绣",
    "丰泰", "昌盛", "聚源", "新隆", "金桥", "汇通", "宏图", "福源", "安泰", "兴业", "天成",
    "博雅", "正和",
)  # fmt: skip
FUND_NAME = "长三角生态绿色一体化发展示范区消费者权益先行垫付资金"
PLATFORMS = (("31", "长三角优选生活服务平台有限公司"), ("33", "浙里好物网络科技有限公司"))
FEN_PER_YUAN = 100


def yuan(fen: int) -> str:
    """Integer 分 as 元 text; never through a float."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}¥{whole:,}.{cents:02d}"
