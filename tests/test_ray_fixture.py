"""The session Ray fixture runs tasks on a local 2-CPU instance."""


def test_ray_runs_a_task(ray_session):
    ray = ray_session

    @ray.remote
    def square(x):
        return x * x

    assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
    assert ray.cluster_resources()["CPU"] == 2
