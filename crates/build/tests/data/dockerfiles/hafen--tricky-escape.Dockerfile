# escape=`

FROM mcr.microsoft.com/windows/servercore AS win
SHELL ["powershell", "-Command"]
RUN Write-Host "a `
    b" ; `
    Write-Host c
ENV PATHX C:\tools\bin `
    OTHER=`"quoted`"
COPY --chown=a:b ["C:\\src dir", "C:\\dest"]
WORKDIR C:\app
