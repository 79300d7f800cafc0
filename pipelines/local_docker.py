"""kfp.local's ``DockerRunner`` for ``kfpkit run --runner docker``: every task in its image, as a cluster runs it.

:func:`prepare_docker_run` checks the engine and the images before anything runs, then builds the runner:

* **Images.** Each task runs in the image its component names (``kfpkit.components.images``: base, tfdv,
  train, serving, tagged with the package version), so validate runs in the tfdv image and no ``.venv-tfdv``
  is needed. The images must already be on the engine (``make images-local``); kfp.local would otherwise
  try to pull them, so a missing one is refused first, with the names of all that are missing.
* **The task's own user.** Containers run as the image's user, uid 1000 (group 0), as on a cluster. kfp.local
  mounts the pipeline root at its own path; kfpkit mounts every other local folder or file that a path
  parameter (:data:`PATH_PARAMETER`: ``source``, ``*_source``, ``*_uri``, ``*_root``, ``*_dir``) names at
  its own path too -- the registry root and checkpoint folder read-write, a source table, a schema or a
  model version read-only -- so the same absolute paths work inside and outside (a relative path is made
  absolute first: the container's working directory is the image's).
* **Files the host user can read and remove.** uid 1000 may write the pipeline root and the writable
  folders because kfpkit makes them group-writable with the setgid bit (``chmod g+rwxs``, skipped for a
  folder uid 1000 already owns) and adds their groups to the container's groups. Every task starts with
  ``umask 0002`` (an entrypoint ``sh -c 'umask 0002 && exec "$@"'`` before kfp's own command). So what the
  tasks write is owned by uid 1000 and by the folder's group (the setgid bit passes it on), mode 664/775:
  readable by anyone, writable and removable by the group's members, i.e. by the user who owns the folder.
* **Network.** ``network_mode="host"``, as the subprocess runner has (``http(s)://`` sources, a webhook on
  loopback, a local Prometheus); an engine started with ``--bridge=none`` has no other network with access.
* **Exit status.** kfp 2.17's ``run_docker_container`` starts the container with ``auto_remove=True`` and
  takes a ``NotFound`` from ``wait()`` for exit status 0, so a task whose container has already been removed
  when its status is asked for counts as SUCCESS (kubeflow/pipelines#13332; the fixes #13381, #13402 and
  #13907 are not released). :func:`run_container_keeping_status` does the same without ``auto_remove``:
  it streams the container's output, reads its real exit status, then removes it. :meth:`DockerRun.active`
  puts it in place of kfp's for the duration of the run only.

The ``docker`` package (``docker==7.1.0`` in ``requirements/main.lock``) is imported only here, on use.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Set, Tuple

if TYPE_CHECKING:
    from kfp.local import DockerRunner

IMAGE_UID = 1000  # USER of every kfpkit image (images/*.Dockerfile)
# The names of the pipeline parameters that may hold a local path (a column or model name never does).
PATH_PARAMETER = re.compile(r"(?:\w+_)?(?:source|uri|root|dir)")
# Parameters whose local folder the tasks write into (created when missing); every other parameter naming an
# existing local file or folder is mounted read-only.
WRITABLE_PARAMETERS = ("registry_root", "checkpoint_dir")
# How deep below a writable folder kfpkit lets uid 1000 write: the registry writes <root>, <root>/<model> and
# the hidden <root>/<model>/.claims and .staging (one level further, hidden folders only), never into a
# complete version <root>/<model>/<N>.
SHARED_DEPTH = 1
UMASK_ENTRYPOINT = ["/bin/sh", "-c", 'umask 0002 && exec "$@"', "kfpkit-task"]
ENGINE_HELP = (
    "start one with `make docker-engine` and run the `export DOCKER_HOST=...` it prints, or point DOCKER_HOST "
    "at a running engine"
)
IMAGES_HELP = "build them with `make images-local` (or `make images`), tagged as the components name them"


class DockerSetupError(RuntimeError):
    """The Docker run cannot start: no engine answers, an image is missing, or a folder cannot be shared."""


@dataclass
class DockerRun:
    """A prepared Docker run: the kfp.local runner, the pipeline arguments it needs and what it mounts.

    Attributes:
        runner: kfp.local's ``DockerRunner`` with kfpkit's container arguments.
        arguments: The pipeline arguments, local paths made absolute.
        mounts: ``(host path, read_only)`` of every folder or file mounted besides the pipeline root.
        images: The images the pipeline's tasks run in.
        groups: The group ids added to the containers' groups (those of the shared folders).
    """

    runner: DockerRunner
    arguments: Dict[str, Any]
    mounts: List[Tuple[str, bool]] = field(default_factory=list)
    images: List[str] = field(default_factory=list)
    groups: List[int] = field(default_factory=list)

    @contextlib.contextmanager
    def active(self) -> Iterator[DockerRun]:
        """Inside the block, kfp.local's Docker tasks start with :func:`run_container_keeping_status`."""
        from kfp.local import docker_task_handler

        original = docker_task_handler.run_docker_container
        docker_task_handler.run_docker_container = run_container_keeping_status
        try:
            yield self
        finally:
            docker_task_handler.run_docker_container = original


def pipeline_images(pipeline: Any) -> List[str]:
    """The images of every task of ``pipeline`` (nested pipelines included), sorted."""
    executors = pipeline.pipeline_spec.deployment_spec.fields["executors"].struct_value.fields
    images = set()
    for executor in executors.values():
        container = executor.struct_value.fields.get("container")
        if container is not None and "image" in container.struct_value.fields:
            images.add(container.struct_value.fields["image"].string_value)
    return sorted(images)


def local_path(value: Any) -> Optional[str]:
    """The absolute local path that ``value`` names (a path or ``file://`` URI of something that exists).

    A relative path counts when it exists relative to the current directory; a missing local path counts
    only when absolute (for a folder the run creates); URIs of other schemes never count.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    path = value[len("file://") :] if value.startswith("file://") else value
    if "://" in path:
        return None
    if os.path.isabs(path) or os.path.exists(path):
        return os.path.abspath(path)
    return None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def container_arguments(
    arguments: Dict[str, Any], pipeline_root: str, writable: Iterable[str] = WRITABLE_PARAMETERS
) -> Tuple[Dict[str, Any], List[Tuple[str, bool]]]:
    """The arguments with local paths made absolute, and the host paths to mount for them.

    Only parameters whose name matches :data:`PATH_PARAMETER` are read as paths. A writable parameter's
    folder is created when missing and mounted read-write; any other existing file or folder a parameter
    names is mounted read-only. Paths inside the pipeline root (kfp.local mounts it)
    or inside another mount are left out; a missing read-only path is not mounted (the task that reads it
    fails with its own message, as with the subprocess runner).

    Returns:
        ``(arguments, mounts)``, mounts as ``(host path, read_only)``, read-write ones first.
    """
    writable = set(writable)
    resolved = dict(arguments)
    rw: Set[str] = set()
    ro: Set[str] = set()
    for name, value in arguments.items():
        path = local_path(value) if PATH_PARAMETER.fullmatch(name) else None
        if path is None:
            continue
        if value.startswith("file://"):
            resolved[name] = "file://" + path
        else:
            resolved[name] = path
        if name in writable:
            os.makedirs(path, exist_ok=True)
            rw.add(path)
        elif os.path.exists(path):
            ro.add(path)
    mounts: List[Tuple[str, bool]] = []
    covered = [pipeline_root]
    for path, read_only in [(p, False) for p in sorted(rw)] + [(p, True) for p in sorted(ro)]:
        if not any(_inside(path, folder) for folder in covered):
            mounts.append((path, read_only))
            covered.append(path)
    return resolved, mounts


def share_with_tasks(folder: str, depth: int = 0) -> Set[int]:
    """Lets the tasks' uid 1000 write ``folder``: ``chmod g+rwxs`` on it and on its subfolders down to ``depth``.

    With ``depth`` > 0 the hidden subfolders (``.claims``, ``.staging``) one level deeper are shared too. A
    folder uid 1000 owns is left as it is. The setgid bit makes what the tasks create there belong to the
    folder's group, which the containers are added to.

    Returns:
        The group ids of the folders shared.

    Raises:
        DockerSetupError: a folder lacks the bits and this user may not change them (names the folder).
    """
    groups: Set[int] = set()
    wanted = stat.S_IRWXG | stat.S_ISGID
    for current, subfolders, _ in os.walk(folder):
        level = os.path.relpath(current, folder).count(os.sep) + (current != folder)
        if level == depth and depth > 0:
            subfolders[:] = [name for name in subfolders if name.startswith(".")]
        elif level >= depth:
            subfolders[:] = []
        info = os.stat(current)
        if info.st_uid == IMAGE_UID:
            continue
        groups.add(info.st_gid)
        if info.st_mode & wanted != wanted:
            try:
                os.chmod(current, stat.S_IMODE(info.st_mode) | wanted)
            except PermissionError as exc:
                raise DockerSetupError(
                    f"{current}: the tasks run as uid {IMAGE_UID} and cannot write this folder, and this user "
                    f"may not make it group-writable ({exc.strerror}); run `chmod g+rwxs {current}` as its owner"
                ) from exc
    return groups


def _client() -> Any:
    """A client of the engine ``DOCKER_HOST`` names (the default socket without it), checked with a ping."""
    import docker

    where = os.environ.get("DOCKER_HOST") or "the default socket"
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerSetupError(f"no Docker engine answers at {where} ({exc}); {ENGINE_HELP}") from exc
    return client


def missing_images(client: Any, images: Iterable[str]) -> List[str]:
    """The images of ``images`` that the engine does not hold, in the order given."""
    import docker

    missing = []
    for image in images:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
    return missing


def docker_runner(mounts: Iterable[Tuple[str, bool]], groups: Iterable[int]) -> DockerRunner:
    """kfp.local's ``DockerRunner`` with kfpkit's container arguments (see the module docstring).

    Args:
        mounts: ``(host path, read_only)`` bind mounts at the same path in the container.
        groups: Group ids added to the container's user (the image's uid 1000).
    """
    from docker.types import Mount
    from kfp import local

    return local.DockerRunner(
        network_mode="host",
        group_add=[str(gid) for gid in sorted(set(groups))],
        entrypoint=list(UMASK_ENTRYPOINT),
        mounts=[Mount(target=path, source=path, type="bind", read_only=read_only) for path, read_only in mounts],
    )


def prepare_docker_run(pipeline: Any, arguments: Dict[str, Any], pipeline_root: str) -> DockerRun:
    """Checks the engine and the images, shares the writable folders with the tasks, builds the runner.

    Args:
        pipeline: The pipeline (its spec names the images).
        arguments: The pipeline arguments (local paths in them are mounted).
        pipeline_root: The absolute pipeline root (kfp.local mounts it; it must exist).

    Raises:
        DockerSetupError: no engine answers, an image is not on the engine, or a folder cannot be shared.
    """
    client = _client()
    try:
        images = pipeline_images(pipeline)
        missing = missing_images(client, images)
    finally:
        client.close()
    if missing:
        raise DockerSetupError(f"the engine does not hold {', '.join(missing)}; {IMAGES_HELP}")
    resolved, mounts = container_arguments(arguments, pipeline_root)
    groups = share_with_tasks(pipeline_root)
    for path, read_only in mounts:
        if not read_only:
            groups |= share_with_tasks(path, depth=SHARED_DEPTH)
    runner = docker_runner(mounts, groups)
    return DockerRun(runner=runner, arguments=resolved, mounts=mounts, images=images, groups=sorted(groups))


def run_container_keeping_status(
    client: Any, image: str, command: List[str], volumes: Dict[str, Any], **container_run_args: Any
) -> int:
    """kfp.local's ``run_docker_container`` without ``auto_remove``: the real exit status, then removal.

    Prints the container's output as it comes (the task's log, as kfp.local does) and returns its exit
    status; the container is removed afterwards whatever happened.
    """
    from kfp.local import docker_task_handler

    image = docker_task_handler.add_latest_tag_if_not_present(image=image)
    print(f"Running image {image!r}\n")
    container = client.containers.run(
        image=image, command=command, detach=True, stdout=True, stderr=True, volumes=volumes, **container_run_args
    )
    try:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for chunk in container.logs(stream=True, follow=True):
            print(decoder.decode(chunk), end="")
        print(decoder.decode(b"", final=True), end="")
        return int(container.wait()["StatusCode"])
    finally:
        _remove(container)


def _remove(container: Any) -> None:
    import docker

    with contextlib.suppress(docker.errors.NotFound):
        try:
            container.remove(force=True)
        except docker.errors.APIError as exc:  # e.g. removal already in progress; the status is read
            print(f"kfpkit: container {container.id[:12]} not removed: {exc}")
