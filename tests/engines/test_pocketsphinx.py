from tests.support.speech_data import X

def test_x():
    assert X == 1
