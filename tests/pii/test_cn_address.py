import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("住在江苏省南京市玄武区中山路319号。", ["江苏省南京市玄武区中山路319号"]),
    ("地址：北京市朝阳区建国路88号SOHO现代城2号楼1001室", ["北京市朝阳区建国路88号SOHO现代城2号楼1001室"]),
    ("寄到上海市浦东新区世纪大道100号环球金融中心", ["上海市浦东新区世纪大道100号环球金融中心"]),
    ("住址：朝阳区建国路88号", ["朝阳区建国路88号"]),
    ("天津市和平区滨江道761号", ["天津市和平区滨江道761号"]),
    ("杭州西湖区文三路100号", ["杭州西湖区文三路100号"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "CN_ADDRESS") == expected


@pytest.mark.parametrize("text", [
    "客户在北京市东城区支行办理业务",   # a branch, not a home
    "在北京工作",                      # a city alone
    "中山路很堵",                      # a road without number or context
])
def test_not_found(pii, text):
    assert found(pii, text, "CN_ADDRESS") == []
