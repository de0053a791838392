"""Word lists the recognizers share: surnames, place names, context words. Data, not logic."""

# Common mainland surnames (single characters that are rarely ordinary words at a name position), then
# compound surnames. Characters that are mostly function words (于 aside, which is too common a surname to
# leave out) are left out to keep precision.
CN_SURNAMES_SINGLE = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文"
    "牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲"
    "翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫"
    "米杭洪诸钮嵇邬栾池仇甄封储汲邴糜松井富巫乌焦巴弓隗山谷侯宓全郗班仰秋仲伊宫宁仇栾暴甘厉戎祖武符刘景詹束龙叶"
    "幸司韶郜黎蓟薄印宿白怀蒲邰从鄂索咸籍赖卓蔺屠蒙池乔阴郁胥能苍双闻莘党翟谭贡劳逄姬申扶堵冉宰郦雍却璩桑桂濮牛"
    "寿通边扈燕冀郏浦尚农温别庄晏柴瞿阎充慕连茹习宦艾鱼容向古易慎戈廖庾终暨居衡步都耿满弘匡国文寇广禄阙东欧殳沃"
    "利蔚越夔隆师巩厍聂晁勾敖融冷訾辛阚那简饶空曾毋沙乜养鞠须丰巢关蒯相查后荆红游竺权逯盖益桓公"
)
CN_SURNAMES_COMPOUND = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "轩辕",
    "令狐", "端木", "独孤", "南宫", "西门", "百里", "呼延", "澹台", "万俟", "钟离", "闻人", "赫连", "申屠",
]

# Characters that end a name run when they follow a surname: verbs and particles that start the next word.
CN_NAME_STOP = set("来去说称对在是的了和与及或向给把被将要已于从到为也都就还又并但而先女小经老同师总同您你我他她它们这那有无不没"
                   "反投咨更表致电话讲问答想打办申领取存转汇付收交开销挂补更改查询致")

CN_PROVINCES = [
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
    "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古",
    "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
]
CN_PROVINCE_SUFFIXES = ["壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市"]

CN_CITIES = [
    "石家庄", "唐山", "秦皇岛", "邯郸", "保定", "张家口", "承德", "沧州", "廊坊", "太原", "大同", "呼和浩特", "包头",
    "沈阳", "大连", "鞍山", "抚顺", "丹东", "锦州", "长春", "吉林", "哈尔滨", "齐齐哈尔", "大庆", "牡丹江", "南京",
    "无锡", "徐州", "常州", "苏州", "南通", "连云港", "淮安", "盐城", "扬州", "镇江", "泰州", "宿迁", "杭州", "宁波",
    "温州", "嘉兴", "湖州", "绍兴", "金华", "衢州", "舟山", "台州", "丽水", "合肥", "芜湖", "蚌埠", "淮南", "马鞍山",
    "安庆", "黄山", "阜阳", "福州", "厦门", "莆田", "三明", "泉州", "漳州", "南平", "龙岩", "南昌", "景德镇", "九江",
    "赣州", "济南", "青岛", "淄博", "枣庄", "东营", "烟台", "潍坊", "济宁", "泰安", "威海", "日照", "临沂", "德州",
    "聊城", "郑州", "开封", "洛阳", "平顶山", "安阳", "新乡", "焦作", "许昌", "南阳", "商丘", "信阳", "武汉", "黄石",
    "十堰", "宜昌", "襄阳", "荆州", "长沙", "株洲", "湘潭", "衡阳", "岳阳", "常德", "张家界", "广州", "韶关", "深圳",
    "珠海", "汕头", "佛山", "江门", "湛江", "茂名", "肇庆", "惠州", "梅州", "东莞", "中山", "潮州", "揭阳", "南宁",
    "柳州", "桂林", "北海", "海口", "三亚", "成都", "自贡", "攀枝花", "泸州", "德阳", "绵阳", "宜宾", "南充", "贵阳",
    "遵义", "昆明", "大理", "丽江", "拉萨", "西安", "宝鸡", "咸阳", "延安", "兰州", "西宁", "银川", "乌鲁木齐", "喀什",
]
CN_ROAD_SUFFIXES = ["大道", "大街", "步行街", "路", "街", "道", "巷", "弄", "胡同", "里"]

# Pinyin surnames and common English given names, for names written in Latin letters.
PINYIN_SURNAMES = {
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu", "hu",
    "guo", "he", "gao", "lin", "luo", "zheng", "liang", "xie", "song", "tang", "han", "feng", "deng", "cao", "peng",
    "zeng", "xiao", "tian", "dong", "yuan", "pan", "jiang", "cai", "yu", "du", "ye", "cheng", "su", "wei", "lu", "ding",
    "ren", "shen", "yao", "cui", "zhong", "tan", "fan", "jin", "shi", "liao", "jia", "xia", "fang", "bai", "zou", "meng",
    "xiong", "qin", "qiu", "yin", "xue", "yan", "duan", "lei", "hou", "long", "tao", "mao", "hao", "gong", "shao",
    "wan", "qian", "dai", "mo", "kong", "xiang", "kang", "wen", "niu", "fu", "ouyang", "situ", "zhuge", "shangguan",
}
PINYIN_GIVEN = {
    "wei", "fang", "na", "min", "jing", "lei", "jun", "yang", "yong", "jie", "tao", "ming", "chao", "xiu", "li", "qiang",
    "yan", "juan", "xia", "ping", "gang", "hua", "hong", "ling", "fen", "yu", "hao", "ran", "xin", "yi", "jia", "qi",
    "bo", "wen", "hui", "lan", "mei", "ying", "dan", "lin", "ning", "peng", "feng", "kai", "xiaoming", "xiaohong",
    "zhiwei", "jianguo", "guoqiang", "haiyan", "xiuying", "yuting", "zihan", "yichen", "haoran", "junjie", "shuang",
}
EN_GIVEN = {
    "james", "john", "robert", "michael", "william", "david", "richard", "joseph", "thomas", "charles", "daniel",
    "matthew", "anthony", "mark", "paul", "steven", "andrew", "kenneth", "joshua", "kevin", "brian", "george",
    "edward", "ronald", "timothy", "jason", "jeffrey", "ryan", "jacob", "gary", "nicholas", "eric", "jonathan",
    "stephen", "larry", "justin", "scott", "brandon", "benjamin", "samuel", "frank", "gregory", "raymond", "alexander",
    "patrick", "jack", "dennis", "jerry", "tyler", "aaron", "henry", "peter", "adam", "nathan", "oliver", "harry",
    "mary", "patricia", "jennifer", "linda", "elizabeth", "barbara", "susan", "jessica", "sarah", "karen", "nancy",
    "lisa", "betty", "margaret", "sandra", "ashley", "kimberly", "emily", "donna", "michelle", "dorothy", "carol",
    "amanda", "melissa", "deborah", "stephanie", "rebecca", "sharon", "laura", "cynthia", "kathleen", "amy", "angela",
    "anna", "emma", "olivia", "sophia", "grace", "chloe", "lucy", "alice", "helen", "julia", "claire", "kate", "tom",
    "sam", "ben", "tony", "jenny", "vivian", "cindy", "eva", "ivy", "coco", "leo", "max", "alex", "chris",
}
EN_SURNAMES = {
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez", "martinez", "hernandez",
    "lopez", "wilson", "anderson", "taylor", "thomas", "moore", "jackson", "martin", "lee", "thompson", "white",
    "harris", "clark", "lewis", "robinson", "walker", "young", "allen", "king", "wright", "scott", "hill", "green",
    "adams", "baker", "nelson", "carter", "mitchell", "roberts", "turner", "phillips", "campbell", "parker", "evans",
    "edwards", "collins", "stewart", "morris", "murphy", "cook", "rogers", "morgan", "cooper", "peterson", "reed",
    "bailey", "bell", "kelly", "howard", "ward", "cox", "richardson", "wood", "watson", "brooks", "bennett", "gray",
    "hughes", "price", "sanders", "myers", "long", "ross", "foster", "hargrave", "onio", "boni",
}
# Given names in the census lists that are mostly ordinary words, places or months: a name only with a title
# or a context word ("Mr Will", "customer May Chen"), never alone.
EN_NAME_WORDS = set("""
in my an so will see may many love man long season hope young guy else soon major art son chance song summer
america miss june april star king al bill september ok page august china january mark numbers sun german lady
brain france spring sunday rich gay carry winter christian queen royal faith rose israel florida angeles prince
forest moon ray loan era golden grant asia ma tiny un virginia desire don hang bell ha clinton lane grace joy
irish hong marine princess sydney carolina jan jordan le roman junior santa georgia pa angel charity mac temple
chase dallas diamond houston kit min na marry angle honey hunter glory liberty precious del eve manual mi candy
clay cleveland dawn isis maryland autumn mercy alpha noble ai denver argentina paris india ed drew buddy crystal
penny sandy holly ivy iris daisy pearl sky ginger destiny page star lou mae sol tu ja pa do re la ma van von
st dr mr mrs ms job bob sue pat rob max jack frank dean gene wan kai ping dot ma delta echo harmony trinity
male female silver gold platinum london berlin credit active yes no
""".split())
# Common words that are also family names or common given names: not a name when written in lower case, and
# not the first word of a two-word name without a known given name.
EN_COMMON_WORDS = EN_NAME_WORDS | set("""
the a and or but for with from to of at by on as is are was were be been being have has had do does did not no
yes this that these those there here when where what which who how why all any some each every new old good
great best better big small first last next high low little long white black brown green gray grey young king
hill wood woods stone bell rich price love hope cook baker miller hunter carter mason turner parker walker
""".split())
# Words that are never part of a person's name, though written with a capital (places, greetings, products).
EN_NOT_NAMES = {
    "customer", "client", "bank", "card", "account", "mobile", "banking", "service", "road", "street", "avenue",
    "china", "beijing", "shanghai", "the", "dear", "thank", "thanks", "please", "branch", "team", "hong", "kong",
    "macau", "taiwan", "guangzhou", "shenzhen", "pudong", "central", "nanjing", "wuhan", "hi", "hello", "hey",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march",
    "april", "may", "june", "july", "august", "september", "october", "november", "december", "i", "i'm", "my",
    "mr", "mrs", "ms", "dr", "prof", "miss", "sir", "madam", "and", "or", "of", "in", "on", "at", "to", "for",
}
