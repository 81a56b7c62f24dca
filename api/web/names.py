"""Chinese (and English) names of the codes a page shows: product categories (policy and
commitments name them by slug), provinces and the GB/T 2260 divisions of the alliance's
stores. An unknown code is shown as itself, never hidden."""

from __future__ import annotations

from typing import Final

CATEGORIES: Final[dict[str, tuple[str, str]]] = {
    "custom_made": ("定制商品", "custom-made goods"),
    "fresh_perishable": ("鲜活易腐商品", "fresh and perishable goods"),
    "digital_opened": ("已拆封的数字化商品", "opened digital goods"),
    "newspaper_periodical": ("报纸、期刊", "newspapers and periodicals"),
    "gold_jewellery": ("黄金饰品", "gold jewellery"),
    "luxury_goods": ("奢侈品", "luxury goods"),
    "bulk_food": ("散装食品", "bulk food"),
    "apparel": ("服装", "apparel"),
    "accessories": ("服饰配件", "accessories"),
    "footwear": ("鞋类", "footwear"),
    "household_appliances": ("家用电器", "household appliances"),
    "electronics": ("电子产品", "electronics"),
    "digital_accessories": ("数码配件", "digital accessories"),
    "baby_products": ("母婴用品", "baby products"),
    "toys": ("玩具", "toys"),
    "cosmetics": ("化妆品", "cosmetics"),
    "home_furnishing": ("家居用品", "home furnishing"),
    "kitchenware": ("厨具", "kitchenware"),
    "sports_goods": ("体育用品", "sports goods"),
    "daily_necessities": ("日用百货", "daily necessities"),
    "luggage": ("箱包", "luggage"),
    "books": ("图书", "books"),
    "stationery": ("文具", "stationery"),
    "underwear": ("内衣", "underwear"),
    "cosmetics_opened": ("已拆封化妆品", "opened cosmetics"),
}

PROVINCES: Final[dict[str, tuple[str, str]]] = {
    "31": ("上海市", "Shanghai"),
    "32": ("江苏省", "Jiangsu"),
    "33": ("浙江省", "Zhejiang"),
    "34": ("安徽省", "Anhui"),
    "43": ("湖南省", "Hunan"),
}

# GB/T 2260 county-level divisions where the alliance's stores are (city, district).
DIVISIONS: Final[dict[str, str]] = {
    "310101": "上海市黄浦区", "310104": "上海市徐汇区", "310105": "上海市长宁区",
    "310106": "上海市静安区", "310107": "上海市普陀区", "310110": "上海市杨浦区",
    "310112": "上海市闵行区", "310115": "上海市浦东新区", "310118": "上海市青浦区",
    "320102": "南京市玄武区", "320105": "南京市建邺区", "320211": "无锡市滨湖区",
    "320402": "常州市天宁区", "320505": "苏州市虎丘区", "320506": "苏州市吴中区",
    "320508": "苏州市姑苏区", "320509": "苏州市吴江区",
    "330102": "杭州市上城区", "330106": "杭州市西湖区", "330108": "杭州市滨江区",
    "330203": "宁波市海曙区", "330302": "温州市鹿城区", "330402": "嘉兴市南湖区",
    "330421": "嘉兴市嘉善县",
    "340102": "合肥市瑶海区", "340103": "合肥市庐阳区", "340104": "合肥市蜀山区",
    "340202": "芜湖市镜湖区", "340302": "蚌埠市龙子湖区", "341002": "黄山市屯溪区",
    "430102": "长沙市芙蓉区", "430103": "长沙市天心区", "430104": "长沙市岳麓区",
    "430105": "长沙市开福区", "430111": "长沙市雨花区", "430202": "株洲市荷塘区",
    "430302": "湘潭市雨湖区",
}  # fmt: skip


def category_name(slug: str, lang: str) -> str:
    names = CATEGORIES.get(slug)
    if names is None:
        return slug
    return names[0] if lang == "zh-CN" else names[1]


def province_name(code: str, lang: str) -> str:
    names = PROVINCES.get(code)
    if names is None:
        return code
    return names[0] if lang == "zh-CN" else names[1]


def division_name(code: str) -> str:
    """``320509`` → ``苏州市吴江区``; an unknown code → its province and the code."""
    known = DIVISIONS.get(code)
    if known is not None:
        return known
    province = PROVINCES.get(code[:2])
    return f"{province[0]} {code}" if province else code
